"""T4: the sign-in dialog against a real team server on loopback: each failure said inline
(unreachable, an untrusted self-signed certificate with its fingerprint then trusted by pin,
a wrong password, throttled after repeated failures), and a forgotten password reset with the
code from a real email caught by aiosmtpd."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from services.api import NewSignIn, SecretStoreUnavailable, TooManyAttemptsError, utcnow
from tests.support.smtpd import SmtpServer, free_port
from tests.support.team_server import BOB, PW, TeamServer, reset_code, team_server
from ui.windows.sign_in import SignInDialog, describe_problem

_open: list[SignInDialog] = []


@pytest.fixture(autouse=True)
def _delete_dialogs(qapp: QApplication) -> Iterator[None]:
    # As in the app (the tray keeps it running): the dialog closing as the only window
    # would otherwise end Qt's loop, and with it the test's.
    qapp.setQuitOnLastWindowClosed(False)
    yield
    while _open:
        dialog = _open.pop()
        dialog.close()
        shiboken6.delete(dialog)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TeamServer]:
    with SmtpServer() as smtp:
        async with team_server(tmp_path, smtp=smtp) as running:
            yield running


def make(qtbot: QtBot, url: str, kept: list[NewSignIn] | None = None) -> SignInDialog:
    store = kept if kept is not None else []
    dialog = SignInDialog(device="test desktop", keep=store.append, server_url=url, email=BOB)
    _open.append(dialog)
    dialog.show()
    return dialog


async def test_t4_sign_in_is_kept_then_accepted(qtbot: QtBot, server: TeamServer) -> None:
    kept: list[NewSignIn] = []
    dialog = make(qtbot, server.url, kept)
    assert not dialog.sign_in_button.isEnabled()  # no password yet
    qtbot.keyClicks(dialog.password_edit, PW)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    assert dialog.result() == SignInDialog.DialogCode.Accepted
    assert dialog.signed_in is not None and kept == [dialog.signed_in]
    assert dialog.signed_in.account.email == BOB


async def test_t4_an_unreachable_server_is_said_inline(qtbot: QtBot) -> None:
    dialog = make(qtbot, f"http://127.0.0.1:{free_port()}")
    dialog.password_edit.setText(PW)
    assert not await dialog.submit()
    text = dialog.problem_label.text()
    assert dialog.problem_label.isVisible() and "Cannot reach the server" in text
    assert "Check the address" in text and not dialog.trust_button.isVisible()
    assert dialog.isVisible() and dialog.sign_in_button.isEnabled()


async def test_t4_a_wrong_password_then_throttled_says_when_to_try_again(
    qtbot: QtBot, server: TeamServer
) -> None:
    dialog = make(qtbot, server.url)
    dialog.password_edit.setText("not the password")
    assert not await dialog.submit()
    assert dialog.problem_label.text() == "Wrong email or password."
    for _ in range(10):
        assert not await dialog.submit()
        if "Too many" in dialog.problem_label.text():
            break
    assert "Too many failed attempts. Try again at" in dialog.problem_label.text()
    assert "seconds)" in dialog.problem_label.text()


async def test_t4_an_untrusted_certificate_shows_its_fingerprint_then_is_trusted(
    qtbot: QtBot, tmp_path: Path
) -> None:
    async with team_server(tmp_path, tls=True) as server:
        kept: list[NewSignIn] = []
        dialog = make(qtbot, server.url, kept)
        dialog.password_edit.setText(PW)
        assert not await dialog.submit()
        text = dialog.problem_label.text()
        assert "does not trust the server's certificate" in text
        fingerprint = dialog.fingerprint_label.accessibleDescription()
        assert len(fingerprint) == 95 and fingerprint.count(":") == 31
        assert dialog.fingerprint_label.isVisible()
        assert dialog.fingerprint_label.text().replace("\n", ":") == fingerprint
        assert dialog.trust_button.isVisible()
        qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
        await dialog.wait_idle()
        assert dialog.result() == SignInDialog.DialogCode.Accepted
        assert kept[0].account.pin_sha256 == fingerprint


async def test_m5_forgot_password_with_the_code_from_a_real_email(
    qtbot: QtBot, server: TeamServer
) -> None:
    kept: list[NewSignIn] = []
    dialog = make(qtbot, server.url, kept)
    qtbot.mouseClick(dialog.forgot_button, Qt.MouseButton.LeftButton)
    assert dialog.pages.currentWidget() is dialog.reset_page
    assert not dialog.sign_in_button.isVisible()
    assert await dialog.send_code()
    assert "on its way" in dialog.reset_intro.text()
    dialog.code_edit.setText(await reset_code(server, BOB))
    dialog.new_password_edit.setText("a brand new password")
    dialog.repeat_edit.setText("a brand new passwore")
    assert not await dialog.set_new_password()
    assert dialog.problem_label.text() == "The two passwords are not the same."
    dialog.repeat_edit.setText("a brand new password")
    qtbot.mouseClick(dialog.set_password_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    assert dialog.result() == SignInDialog.DialogCode.Accepted
    assert kept and kept[0].account.email == BOB


async def test_t4_a_keyring_that_cannot_keep_the_token_is_said_inline(
    qtbot: QtBot, server: TeamServer
) -> None:
    def keep(_new: NewSignIn) -> None:
        raise SecretStoreUnavailable("No keyring to keep passwords in.")

    dialog = SignInDialog(device="d", keep=keep, server_url=server.url, email=BOB)
    _open.append(dialog)
    dialog.password_edit.setText(PW)
    assert not await dialog.submit()
    assert dialog.problem_label.text() == "No keyring to keep passwords in."


def test_t4_throttled_names_the_local_time_and_seconds() -> None:
    now = utcnow()
    error = TooManyAttemptsError("x", retry_at=now + timedelta(seconds=30))
    text, fingerprint = describe_problem(error, now=now)
    at = (now + timedelta(seconds=30)).astimezone().strftime("%H:%M:%S")
    assert text == f"Too many failed attempts. Try again at {at} (in 30 seconds)."
    assert fingerprint is None
