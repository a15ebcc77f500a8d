"""D2 on a real tray: the bubble is visible in the tray host's pixels (Xvfb + trayer)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from tests.unit.ui.pixels import count_green
from ui.widgets.bubble import tray_icon

pytestmark = pytest.mark.xvfb


def _grab_tray(tray: QSystemTrayIcon) -> QImage:
    screen = QGuiApplication.primaryScreen()
    assert screen is not None
    rect = tray.geometry()
    shot = screen.grabWindow(0, rect.x(), rect.y(), rect.width(), rect.height())
    return shot.toImage().convertToFormat(QImage.Format.Format_ARGB32)


@pytest.mark.parametrize("count", [7, 120])
def test_d2_bubble_shows_in_a_real_tray(qapp: QApplication, qtbot: QtBot, count: int) -> None:
    assert QSystemTrayIcon.isSystemTrayAvailable()
    tray = QSystemTrayIcon()
    tray.setIcon(tray_icon(count=0))
    tray.show()
    qtbot.waitUntil(lambda: tray.geometry().width() > 0, timeout=60_000)
    qtbot.wait(300)
    plain = _grab_tray(tray)
    assert count_green(plain, x0=0, y0=0, x1=plain.width(), y1=plain.height()) == 0
    tray.setIcon(tray_icon(count=count))
    qtbot.wait(300)

    def bubble_visible() -> bool:
        image = _grab_tray(tray)
        half_w, half_h = image.width() // 2, image.height() // 2
        return count_green(image, x0=half_w, y0=0, x1=image.width(), y1=half_h) > 6

    qtbot.waitUntil(bubble_visible, timeout=60_000)
    tray.hide()
