"""D6 (issue 8 item 15): the main window fits the screen and comes back where it was, with
its splitter, but only onto a screen that exists."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from tests.unit.ui.desk import Desk, open_desk, with_desk
from ui.windows.window_place import WindowPlace


def _available() -> QRect:
    screen = QGuiApplication.primaryScreen()
    assert screen is not None
    return screen.availableGeometry()


@with_desk
async def test_d6_the_window_fits_the_screen(desk: Desk, qtbot: QtBot) -> None:
    available = _available()  # offscreen: 800x800, smaller than the 1100x720 default
    assert available.contains(desk.window.frameGeometry()), (
        desk.window.frameGeometry(),
        available,
    )
    # At 200 % on a 1366x768 screen, 683x384 logical pixels remain, less a panel.
    hint = desk.window.minimumSizeHint()
    assert hint.width() <= 660 and hint.height() <= 340, hint


async def test_d6_place_and_splitter_come_back(tmp_path: Path, qtbot: QtBot) -> None:
    settings = QSettings(str(tmp_path / "desktop.ini"), QSettings.Format.IniFormat)
    async with open_desk(tmp_path / "one") as desk:
        desk.window.setGeometry(30, 60, 640, 500)
        desk.window.splitter.setSizes([200, 440])
        sizes = desk.window.splitter.sizes()
        WindowPlace(settings).save(desk.window, desk.window.splitter)
    async with open_desk(tmp_path / "two") as desk:
        WindowPlace(settings).restore(desk.window, desk.window.splitter)
        assert desk.window.geometry() == QRect(30, 60, 640, 500)
        assert desk.window.splitter.sizes() == sizes


async def test_d6_a_place_on_a_screen_that_is_gone_is_not_used(
    tmp_path: Path, qtbot: QtBot
) -> None:
    settings = QSettings(str(tmp_path / "desktop.ini"), QSettings.Format.IniFormat)
    settings.setValue("main_window/screen", "HDMI-9")
    settings.setValue("main_window/rect", "3000,100,700,500")
    async with open_desk(tmp_path / "one") as desk:
        WindowPlace(settings).restore(desk.window, desk.window.splitter)
        assert _available().contains(desk.window.frameGeometry())


@with_desk
async def test_d1_closing_without_a_tray_minimizes_instead_of_vanishing(
    desk: Desk, qtbot: QtBot
) -> None:
    """Offscreen has no tray (as after a tray host died): closing must keep the app reachable."""
    quits: list[bool] = []
    desk.window.quit_requested.connect(lambda: quits.append(True))
    desk.window.close()
    assert quits == []
    assert desk.window.isVisible()
    assert desk.window.windowState() & Qt.WindowState.WindowMinimized
