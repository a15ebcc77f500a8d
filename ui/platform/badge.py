"""The count where there is no tray (N7): the window title and the app badge."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from ui.bubble import bubble_text

__all__ = ["set_app_badge", "window_title"]


def set_app_badge(app: QGuiApplication, count: int) -> None:
    """Dock / taskbar / launcher badge; 0 clears it.

    An instance method in PySide6 (`QGuiApplication.setBadgeNumber(5)` raises TypeError). On
    Linux it shows only where the launcher knows our desktop file (`setDesktopFileName`).
    """
    app.setBadgeNumber(max(0, count))


def window_title(base: str, count: int) -> str:
    """'(3) Deskbell'; the plain title when nothing is unseen; '(99+) …' past 99 as the bubble."""
    text = bubble_text(count)
    return f"({text}) {base}" if text else base
