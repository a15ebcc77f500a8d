"""The left side of the main window (N2, D5): New item, Go to conversation, the app menu, and
the Internal and External inboxes as lists over the models the window gives it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.roles import CONVERSATION_ID_ROLE
from ui.theme import Theme
from ui.widgets.conversation_list import ConversationDelegate, ConversationListModel

__all__ = ["EXTERNAL_TAB", "INBOX_NAMES", "INTERNAL_TAB", "Sidebar"]

INTERNAL_TAB, EXTERNAL_TAB = 0, 1
INBOX_NAMES = {INTERNAL_TAB: "Internal", EXTERNAL_TAB: "External"}


class Sidebar(QWidget):
    """Emits `conversation_chosen(id)` when a row is clicked or activated."""

    conversation_chosen = Signal(int)

    def __init__(
        self,
        *,
        models: Mapping[int, ConversationListModel],
        menu: QMenu,
        theme: Theme,
        now: Callable[[], datetime],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Open conversations")
        self.tabs = QTabWidget(self)
        self.tabs.setAccessibleName("Inboxes")
        self.tabs.setDocumentMode(True)
        self.lists: dict[int, QListView] = {}
        for tab, name in INBOX_NAMES.items():
            view = QListView(self.tabs)
            view.setModel(models[tab])
            view.setItemDelegate(ConversationDelegate(theme=theme, now=now, parent=view))
            view.setAccessibleName(f"{name} conversations")
            view.setUniformItemSizes(True)
            view.setFrameShape(QFrame.Shape.NoFrame)
            view.setMouseTracking(True)
            view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
            view.clicked.connect(self._on_list_activated)
            view.activated.connect(self._on_list_activated)
            self.lists[tab] = view
            self.tabs.addTab(view, name)

        self.new_button = QPushButton("+ New item", self)
        self.new_button.setObjectName("newItemButton")
        self.new_button.setAccessibleName("New item")
        self.new_button.setToolTip("Create an item (Ctrl+N)")
        self.switch_button = QPushButton("Go to…   Ctrl+K", self)
        self.switch_button.setObjectName("goToButton")
        self.switch_button.setAccessibleName("Go to conversation")
        self.switch_button.setToolTip("Find any conversation by number or title (Ctrl+K)")
        # It may shrink (its text clips) so the window fits a small screen at 200 %.
        self.switch_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.switch_button.setMinimumWidth(90)
        self.menu_button = QToolButton(self)
        self.menu_button.setObjectName("menuButton")
        self.menu_button.setText("☰")
        self.menu_button.setAccessibleName("Deskbell menu")
        self.menu_button.setToolTip("Settings, Messaging Center, Quit")
        self.menu_button.setMenu(menu)
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

        top = QHBoxLayout()
        top.setContentsMargins(10, 10, 10, 8)
        top.setSpacing(6)
        top.addWidget(self.new_button)
        top.addWidget(self.switch_button, 1)
        top.addWidget(self.menu_button)
        # N6: do not disturb, visible in the window too (the tray may be hidden or absent).
        self.dnd_label = QLabel(self)
        self.dnd_label.setObjectName("dndLabel")
        self.dnd_label.setTextFormat(Qt.TextFormat.PlainText)
        self.dnd_label.setStyleSheet(
            f"#dndLabel {{ color: {theme.text.name()}; background: {theme.alt_base.name()};"
            f" border-left: 3px solid {theme.internal.name()}; padding: 6px 10px;"
            " margin: 0 10px 6px 10px; }"
        )
        self.dnd_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(self.dnd_label)
        layout.addWidget(self.tabs)

    def set_tab_count(self, tab: int, count: int) -> None:
        """N3: the inbox tab carries its own unseen count."""
        name = INBOX_NAMES[tab]
        self.tabs.setTabText(tab, f"{name} ({count})" if count else name)

    def set_dnd(self, text: str) -> None:
        """N6: "Do not disturb until 14:30", or "" when it is off."""
        self.dnd_label.setText(f"{text}: no sound, no notifications" if text else "")
        self.dnd_label.setAccessibleName(self.dnd_label.text())
        self.dnd_label.setVisible(bool(text))

    def _on_list_activated(self, index: QModelIndex) -> None:
        conv_id = index.data(CONVERSATION_ID_ROLE)
        if isinstance(conv_id, int):
            self.conversation_chosen.emit(conv_id)
