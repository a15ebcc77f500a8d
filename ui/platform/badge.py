"""The count on the app badge where there is no tray (N7); the title is `ui.format.window_title`."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

__all__ = ["set_app_badge"]


def set_app_badge(app: QGuiApplication, count: int) -> None:
    """Dock / taskbar / launcher badge; 0 clears it.

    An instance method in PySide6 (`QGuiApplication.setBadgeNumber(5)` raises TypeError). On
    Linux it shows only where the launcher knows our desktop file (`setDesktopFileName`).
    """
    app.setBadgeNumber(max(0, count))
