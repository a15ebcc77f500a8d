"""T4, T5 in the window: the quiet connection indicator (offline, connecting, signed out;
nothing when online), and Settings' Account tab with the live state and "Sign out"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from services.api import TeamAccount
from tests.unit.ui.desk import open_desk, until
from tests.unit.ui.fake_sync import FakeSync, State
from ui.theme import DARK, LIGHT
from ui.widgets.connection_indicator import ConnectionIndicator

ACCOUNT = TeamAccount(
    server_url="https://desk.example.com",
    email="ann@example.com",
    person_id=1,
    name="Ann Agent",
    pin_sha256="AB:" * 31 + "CD",
)


async def test_t5_the_indicator_follows_the_connection_quietly(
    tmp_path: Path, qtbot: QtBot
) -> None:
    sync = FakeSync(State.CONNECTING)
    async with open_desk(tmp_path, team_account=ACCOUNT, connection=sync) as desk:
        indicator = desk.window.connection_indicator
        assert indicator.isVisible() and indicator.text() == "Connecting to the server…"
        assert indicator.accessibleName() == "Connection: Connecting to the server…"
        sync.set(State.ONLINE)
        assert not indicator.isVisible()
        assert indicator.accessibleName() == "Connection: online"
        sync.set(State.OFFLINE)
        assert indicator.isVisible() and indicator.text().startswith("Offline")
        sync.set(State.SIGNED_OUT)
        assert "Signed out" in indicator.text()


async def test_t5_a_local_window_has_no_indicator(tmp_path: Path, qtbot: QtBot) -> None:
    async with open_desk(tmp_path) as desk:
        assert not desk.window.connection_indicator.isVisible()
        settings = await desk.window.open_settings()
        assert settings.account_section is None
        assert settings.tabs.tabText(0) == "Email (SMTP)"
        settings.reject()


def test_d6_the_indicator_reads_in_light_and_dark(qtbot: QtBot) -> None:
    for theme in (LIGHT, DARK):
        indicator = ConnectionIndicator(theme=theme)
        qtbot.addWidget(indicator)
        indicator.set_state("OFFLINE")
        assert theme.muted.name() in indicator.styleSheet()
        assert theme.alt_base.name() in indicator.styleSheet()


async def test_t4_settings_show_the_account_live_state_and_sign_out(
    tmp_path: Path, qtbot: QtBot
) -> None:
    sync = FakeSync(State.ONLINE)
    async with open_desk(tmp_path, team_account=ACCOUNT, connection=sync) as desk:
        settings = await desk.window.open_settings()
        section = settings.account_section
        assert section is not None and settings.tabs.currentWidget() is section
        assert not settings.tabs.isTabVisible(1) and not settings.tabs.isTabVisible(2)
        assert section.account_label.text() == "Ann Agent <ann@example.com>"
        assert section.server_label.text() == "https://desk.example.com"
        assert section.certificate_label.text() == ACCOUNT.pin_sha256
        assert section.state_label.text() == "Connected"
        sync.set(State.OFFLINE)
        assert section.state_label.text().startswith("Offline")
        with qtbot.waitSignal(desk.window.sign_out_requested, timeout=10_000):
            qtbot.mouseClick(section.sign_out_button, Qt.MouseButton.LeftButton)
        settings.reject()
        await until(lambda: not settings.isVisible())
        listeners = len(sync.listeners)
        assert listeners == 1  # the window's indicator; the closed tab let go of its own
