"""T4, T5, D6 on a real X screen, light and dark: the first-run choice, a sign-in refused for
an untrusted certificate (a real TLS server on loopback) with the whole fingerprint readable,
and the main window's offline indicator. Each is grabbed as a PNG under the test's folder, or
under DESKBELL_SCREENSHOTS when set (docs/screenshots/team-*.png were made so)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QWidget

from services.api import ConnectionState, TeamAccount
from tests.support.team_server import BOB, PW, team_server
from tests.unit.ui import desk
from tests.unit.ui.fake_sync import FakeSync
from ui.theme import apply_theme
from ui.windows.first_run import FirstRunDialog
from ui.windows.sign_in import SignInDialog

pytestmark = pytest.mark.xvfb

ACCOUNT = TeamAccount(
    server_url="https://desk.example.com", email="ann@example.com", person_id=1, name="Ann Agent"
)


@pytest.fixture(autouse=True)
def _light_again(qapp: QApplication) -> Iterator[None]:
    qapp.setQuitOnLastWindowClosed(False)
    yield
    apply_theme(qapp, dark=False)


def _save(widget: QWidget, folder: Path, name: str) -> Path:
    target = Path(os.environ.get("DESKBELL_SCREENSHOTS") or folder) / f"{name}.png"
    assert widget.grab().save(str(target))
    return target


def _inside(child: QWidget, window: QWidget) -> bool:
    top_left = child.mapTo(window, child.rect().topLeft())
    return window.rect().contains(top_left) and window.rect().contains(
        child.mapTo(window, child.rect().bottomRight())
    )


@pytest.mark.parametrize("mode", ["light", "dark"])
async def test_t4_d6_team_screens(
    qapp: QApplication, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    theme = apply_theme(qapp, dark=mode == "dark")
    choice = FirstRunDialog()
    choice.show()
    await asyncio.sleep(0.3)
    assert choice.team_button.isVisible() and choice.local_button.isVisible()
    assert _save(choice, tmp_path, f"team-first-run-{mode}").stat().st_size > 0
    choice.close()

    async with team_server(tmp_path / "server", tls=True) as server:
        dialog = SignInDialog(device="d", keep=lambda _new: None, server_url=server.url, email=BOB)
        dialog.password_edit.setText(PW)
        dialog.show()
        assert not await dialog.submit()
        await asyncio.sleep(0.3)
        label = dialog.fingerprint_label
        assert label.isVisible() and _inside(label, dialog)
        assert label.height() >= label.sizeHint().height()  # both lines, nothing cut off
        assert dialog.trust_button.isVisible() and _inside(dialog.trust_button, dialog)
        _save(dialog, tmp_path, f"team-sign-in-untrusted-{mode}")
        dialog.close()

    monkeypatch.setattr(desk, "LIGHT", theme)  # the desk's window in this mode's colours
    async with desk.open_desk(
        tmp_path / "desk", team_account=ACCOUNT, connection=FakeSync(ConnectionState.OFFLINE)
    ) as opened:
        opened.window.resize(1100, 700)
        await asyncio.sleep(0.3)
        indicator = opened.window.connection_indicator
        assert indicator.isVisible() and _inside(indicator, opened.window)
        _save(opened.window, tmp_path, f"team-offline-{mode}")
