"""The tray icon (D1, N1, N6): the green bubble, a tooltip with the count, and a menu with
Open, Do not disturb and Quit. Where no tray exists the window title and badge carry the count."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QCursor, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ui.widgets.bubble import tray_icon

__all__ = ["DND_MENU", "Tray"]

# (menu text, the choice services.api.Service.set_do_not_disturb takes)
DND_MENU: tuple[tuple[str, str | None], ...] = (
    ("For 30 minutes", "30m"),
    ("For 1 hour", "1h"),
    ("Until tomorrow", "tomorrow"),
    ("Off", None),
)


class Tray(QObject):
    open_requested = Signal()
    quit_requested = Signal()
    dnd_requested = Signal(object)  # str choice, or None for off
    update_check_requested = Signal()

    def __init__(self, *, base: QIcon | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._base = base
        self.count = -1
        self.dnd_text = ""  # "" when do not disturb is off
        self.icon = QSystemTrayIcon(parent)
        self.menu = QMenu()
        self.menu.setAccessibleName("Deskbell")
        open_action = self.menu.addAction("Open Deskbell")
        open_action.triggered.connect(self.open_requested)
        self.dnd_menu = self.menu.addMenu("Do not disturb")
        # What holds now, read from the stored settings (also right after a restart).
        self.dnd_status = self.dnd_menu.addAction("")
        self.dnd_status.setEnabled(False)
        self.dnd_menu.addSeparator()
        group = QActionGroup(self.dnd_menu)
        self.dnd_actions: dict[str | None, QAction] = {}
        for text, choice in DND_MENU:
            action = self.dnd_menu.addAction(text)
            action.setCheckable(True)
            group.addAction(action)
            action.triggered.connect(lambda _=False, c=choice: self.dnd_requested.emit(c))
            self.dnd_actions[choice] = action
        self.menu.addSeparator()
        updates_action = self.menu.addAction("Check for updates…")
        updates_action.triggered.connect(self.update_check_requested)
        quit_action = self.menu.addAction("Quit")
        quit_action.triggered.connect(self.quit_requested)
        # macOS with Qt 6.12: a context menu set on the tray can abort; pop it up ourselves.
        if sys.platform != "darwin":
            self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_icon_activated)
        self.set_count(0)

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def tooltip(self) -> str:
        unseen = f"{self.count} unseen" if self.count else "nothing unseen"
        quiet = f" · {self.dnd_text[0].lower()}{self.dnd_text[1:]}" if self.dnd_text else ""
        return f"Deskbell — {unseen}{quiet}"

    def set_count(self, count: int) -> None:
        """The green bubble (N1, N3): all unseen messages; it counts during DND too (N6)."""
        if count != self.count:
            self.count = count
            self.icon.setIcon(tray_icon(count=count, base=self._base))
        self.icon.setToolTip(self.tooltip())

    def set_dnd(self, text: str) -> None:
        """N6: the tooltip and the menu say whether do not disturb holds, and until when
        (`text`: "Do not disturb until 14:30", or "" when it is off)."""
        self.dnd_text = text
        self.dnd_status.setText(text or "Off: notifications on")
        until = text.removeprefix("Do not disturb ")
        self.dnd_menu.setTitle(f"Do not disturb ({until})" if text else "Do not disturb")
        if text:
            for action in self.dnd_actions.values():
                action.setChecked(False)  # none of the choices says "until 14:30" exactly
        else:
            self.dnd_actions[None].setChecked(True)
        self.icon.setToolTip(self.tooltip())

    def _on_icon_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            if sys.platform == "darwin":
                self.menu.popup(QCursor.pos())
            else:
                self.open_requested.emit()
        elif reason == QSystemTrayIcon.ActivationReason.Context and sys.platform == "darwin":
            self.menu.popup(QCursor.pos())
