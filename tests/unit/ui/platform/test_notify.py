"""D3, N1, N5, N6: the banner, the system adapters and the notification center."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget
from pytestqt.qtbot import QtBot

from tests.unit.ui.fakes import RecordingNotifier
from ui.format import first_words
from ui.platform import PlatformUnavailable
from ui.platform.notify import (
    BannerNotifier,
    Notice,
    NotificationCenter,
    PlyerNotifier,
    TrayMessageNotifier,
)


class UnavailableNotifier(RecordingNotifier):
    def __init__(self) -> None:
        raise PlatformUnavailable("no daemon here")


@pytest.fixture
def window(qtbot: QtBot) -> QWidget:
    widget = QWidget()
    widget.resize(480, 320)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget, timeout=30_000)
    return widget


def test_d3_first_words_single_line_and_short() -> None:
    text = "Hello   there,\nthe printer on floor 3 is " + "really " * 20 + "broken"
    line = first_words(text)
    assert "\n" not in line
    assert len(line) <= 80
    assert line.startswith("Hello there, the printer")
    assert line.endswith("…")
    assert first_words("short one") == "short one"


def test_d3_banner_shows_plain_text(window: QWidget) -> None:
    banner = BannerNotifier(window)
    banner.show(Notice(key="7", title="<i>Ann</i>", body="<b>x</b> & <a href='y'>z</a>"))
    bar = banner.area.bar("7")
    assert bar is not None
    assert bar.isVisible()
    assert bar.body.textFormat() == Qt.TextFormat.PlainText
    assert bar.body.text() == "<b>x</b> & <a href='y'>z</a>"
    assert bar.title.text() == "<i>Ann</i>"
    # Drawn as plain text: the literal tags take room that markup would not.
    plain_width = bar.body.fontMetrics().horizontalAdvance(bar.body.text())
    assert bar.body.sizeHint().width() >= plain_width
    assert banner.area.geometry().top() == 0
    assert banner.area.width() == window.width()


def test_n5_one_banner_per_conversation_updated_in_place(window: QWidget) -> None:
    banner = BannerNotifier(window)
    banner.show(Notice(key="7", title="Ann", body="first"))
    first = banner.area.bar("7")
    banner.show(Notice(key="7", title="Bob", body="second"))
    banner.show(Notice(key="9", title="Cid", body="other"))
    assert banner.area.keys() == ["7", "9"]
    assert banner.area.bar("7") is first
    assert first is not None
    assert first.body.text() == "second"
    assert first.title.text() == "Bob"


def test_n1_banner_click_emits_opened(window: QWidget, qtbot: QtBot) -> None:
    banner = BannerNotifier(window)
    banner.show(Notice(key="42", title="Ann", body="hi"))
    bar = banner.area.bar("42")
    assert bar is not None
    with qtbot.waitSignal(banner.opened, timeout=30_000) as blocker:
        qtbot.mouseClick(bar.open_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["42"]
    assert banner.area.bar("42") is None


def test_d3_banner_close_button_and_auto_hide(window: QWidget, qtbot: QtBot) -> None:
    banner = BannerNotifier(window, auto_hide_ms=50)
    banner.show(Notice(key="1", title="Ann", body="hi"))
    banner.show(Notice(key="2", title="Bob", body="yo"))
    bar = banner.area.bar("1")
    assert bar is not None
    qtbot.mouseClick(bar.close_button, Qt.MouseButton.LeftButton)
    assert banner.area.bar("1") is None
    qtbot.waitUntil(lambda: banner.area.keys() == [], timeout=30_000)
    assert not banner.area.isVisible()


def test_d3_center_uses_first_working_system_adapter(window: QWidget, qtbot: QtBot) -> None:
    center = NotificationCenter(
        banner=BannerNotifier(window), system=(UnavailableNotifier, RecordingNotifier)
    )
    system = center.system
    assert isinstance(system, RecordingNotifier)
    notice = Notice(key="5", title="Ann", body="hello")
    center.notify(notice)
    assert system.shown == [notice]
    with qtbot.waitSignal(center.opened, timeout=30_000) as blocker:
        system.opened.emit("5")
    assert blocker.args == ["5"]
    assert system.closed == ["5"]


def test_d3_center_works_with_no_system_adapter(window: QWidget, qtbot: QtBot) -> None:
    center = NotificationCenter(banner=BannerNotifier(window), system=(UnavailableNotifier,))
    assert center.system is None
    center.notify(Notice(key="3", title="A", body="b"))
    center.close("3")


def test_d3_tray_message_unavailable_without_tray(qapp: QApplication) -> None:
    """Offscreen has no tray: the adapter refuses, so the chain moves on."""
    assert not QSystemTrayIcon.isSystemTrayAvailable()
    with pytest.raises(PlatformUnavailable, match="tray"):
        TrayMessageNotifier(QSystemTrayIcon())


def test_d3_plyer_unavailable_without_a_session_bus(qapp: QApplication) -> None:
    from PySide6.QtDBus import QDBusConnection

    bus = QDBusConnection.connectToBus("unix:path=/nonexistent/deskbell-bus", "deskbell-none")
    try:
        with pytest.raises(PlatformUnavailable):
            PlyerNotifier(bus=bus)
    finally:
        QDBusConnection.disconnectFromBus("deskbell-none")


def test_d3_freedesktop_unavailable_without_a_session_bus(
    qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bus, no daemon: the chain moves on to plyer and the tray (the banner always shows)."""
    from ui.platform.freedesktop import FreedesktopNotifier

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/deskbell-bus")
    with pytest.raises(PlatformUnavailable, match="bus"):
        FreedesktopNotifier()
