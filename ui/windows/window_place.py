"""The main window's place and splitter, kept in a settings file in the data folder (D6).

`ui.policies.geometry` decides; this reads Qt's screens and the file, and applies.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QSplitter, QWidget

from ui.policies.geometry import Rect, SavedPlace, place

__all__ = ["WindowPlace"]

_GROUP = "main_window"


def _rect(qrect: QRect) -> Rect:
    return Rect(qrect.x(), qrect.y(), qrect.width(), qrect.height())


class WindowPlace:
    """`restore(window)` before it is shown, `save(window)` when it closes or the app quits."""

    def __init__(self, settings: QSettings | None) -> None:
        """`settings` None: fit the screen, remember nothing (tests, a first start)."""
        self._settings = settings

    def restore(self, window: QWidget, splitter: QSplitter | None = None) -> None:
        screens = {s.name(): _rect(s.availableGeometry()) for s in QGuiApplication.screens()}
        primary = QGuiApplication.primaryScreen()
        rect, maximized = place(self._read(), screens, primary=primary.name())
        window.setGeometry(rect.x, rect.y, rect.w, rect.h)
        if maximized:
            window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)
        state = self._settings.value(f"{_GROUP}/splitter") if self._settings else None
        if splitter is not None and isinstance(state, QByteArray) and not state.isEmpty():
            splitter.restoreState(state)

    def save(self, window: QWidget, splitter: QSplitter | None = None) -> None:
        maximized = bool(window.windowState() & Qt.WindowState.WindowMaximized)
        g = window.normalGeometry() if maximized else window.geometry()
        s = self._settings
        if s is None or g.isEmpty():
            return  # nowhere to keep it, or never shown
        screen = window.screen()
        s.setValue(f"{_GROUP}/screen", screen.name() if screen is not None else "")
        s.setValue(f"{_GROUP}/rect", f"{g.x()},{g.y()},{g.width()},{g.height()}")
        s.setValue(f"{_GROUP}/maximized", "true" if maximized else "false")
        if splitter is not None:
            s.setValue(f"{_GROUP}/splitter", splitter.saveState())
        s.sync()

    def _read(self) -> SavedPlace | None:
        s = self._settings
        if s is None:
            return None
        raw = str(s.value(f"{_GROUP}/rect", "") or "")
        try:
            x, y, w, h = (int(part) for part in raw.split(","))
        except ValueError:
            return None  # nothing saved yet, or a file edited by hand
        if w <= 0 or h <= 0:
            return None
        return SavedPlace(
            screen=str(s.value(f"{_GROUP}/screen", "") or ""),
            rect=Rect(x, y, w, h),
            maximized=str(s.value(f"{_GROUP}/maximized", "false")) == "true",
        )
