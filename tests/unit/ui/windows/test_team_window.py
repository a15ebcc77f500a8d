"""T4, T5 in the window: the quiet connection indicator (offline, connecting, signed out;
nothing when online), and Settings' Account tab with the live state and "Sign out"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from services.api import ConnectionState, TeamAccount
from tests.unit.ui.desk import open_desk, until
from tests.unit.ui.fake_sync import FakeSync
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
    sync = FakeSync(ConnectionState.CONNECTING)
    async with open_desk(tmp_path, team_account=ACCOUNT, connection=sync) as desk:
        indicator = desk.window.connection_indicator
        assert indicator.isVisible() and indicator.text() == "Connecting to the server…"
        assert indicator.accessibleName() == "Connection: Connecting to the server…"
        sync.set(ConnectionState.ONLINE)
        assert not indicator.isVisible()
        assert indicator.accessibleName() == "Connection: online"
        sync.set(ConnectionState.OFFLINE)
        assert indicator.isVisible() and indicator.text().startswith("Offline")
        sync.set(ConnectionState.SIGNED_OUT)
        assert "session ended" in indicator.text()


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
        indicator.set_state(ConnectionState.OFFLINE)
        assert theme.muted.name() in indicator.styleSheet()
        assert theme.alt_base.name() in indicator.styleSheet()


async def test_t4_settings_show_the_account_live_state_and_sign_out(
    tmp_path: Path, qtbot: QtBot
) -> None:
    sync = FakeSync(ConnectionState.ONLINE)
    async with open_desk(tmp_path, team_account=ACCOUNT, connection=sync) as desk:
        settings = await desk.window.open_settings()
        section = settings.account_section
        assert section is not None and settings.tabs.currentWidget() is section
        assert not settings.tabs.isTabVisible(1) and not settings.tabs.isTabVisible(2)
        assert section.account_label.text() == "Ann Agent <ann@example.com>"
        assert section.server_label.text() == "https://desk.example.com"
        assert section.certificate_label.text() == ACCOUNT.pin_sha256
        assert section.state_label.text() == "Connected"
        sync.set(ConnectionState.OFFLINE)
        assert section.state_label.text().startswith("Offline")
        with qtbot.waitSignal(desk.window.sign_out_requested, timeout=10_000):
            qtbot.mouseClick(section.sign_out_button, Qt.MouseButton.LeftButton)
        settings.reject()
        await until(lambda: not settings.isVisible())
        listeners = len(sync.listeners)
        assert listeners == 1  # the window's indicator; the closed tab let go of its own


class WaitingSync(FakeSync):
    def __init__(self, waiting: int) -> None:
        super().__init__(ConnectionState.OFFLINE)
        self.waiting = waiting

    async def pending_writes(self) -> int:
        return self.waiting


async def _answer_sign_out(qtbot: QtBot, *, waiting: int, confirm: bool) -> tuple[bool, str]:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.desktop import _confirm_sign_out

    window = QWidget()
    qtbot.addWidget(window)
    signing_out, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.ensure_future(
        _confirm_sign_out(window, WaitingSync(waiting), signing_out, stop)  # type: ignore[arg-type]
    )
    await until(lambda: any(w.objectName() == "sign-out" for w in QApplication.topLevelWidgets()))
    [box] = [w for w in QApplication.topLevelWidgets() if w.objectName() == "sign-out"]
    assert isinstance(box, QMessageBox) and box.isVisible()
    text = box.text()
    [sign_out] = [b for b in box.buttons() if b.text() == "Sign out"]
    cancel = box.button(QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(sign_out if confirm else cancel, Qt.MouseButton.LeftButton)
    await task
    assert signing_out.is_set() == stop.is_set()
    return signing_out.is_set(), text


async def test_t4_sign_out_asks_first_and_names_what_would_be_lost(qtbot: QtBot) -> None:
    done, text = await _answer_sign_out(qtbot, waiting=0, confirm=False)
    assert not done and "they stay on the server" in text and "lost" not in text
    done, text = await _answer_sign_out(qtbot, waiting=3, confirm=True)
    assert done and "3 change(s)" in text and "lost" in text


async def test_t3_settings_in_a_team_leave_the_mail_settings_alone(
    tmp_path: Path, qtbot: QtBot
) -> None:
    async with open_desk(tmp_path, team_account=ACCOUNT, connection=FakeSync()) as desk:
        before = desk.service.config("smtp.host")
        settings = await desk.window.open_settings()
        settings.smtp.host_edit.setText("smtp.elsewhere.test")
        assert await settings.save()
        assert desk.service.config("smtp.host") == before
        settings.reject()
