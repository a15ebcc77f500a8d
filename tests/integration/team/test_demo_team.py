"""D9, T5: `deskbell --demo-team` serves the seeded demo team on loopback, gives you and two
bot agents the demo's password and signs this folder's desktop in (token in the keyring); a
second start keeps the server's address and replaces the token."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.demo import ME, TEAMMATES
from app.demo_team import DEMO_PASSWORD, start_demo_team
from app.team_start import saved_team
from services.secrets import SecretStore
from services.team.signin import sign_in_to_team


async def test_d9_t5_demo_team_signs_the_desktop_in_to_its_own_server(
    tmp_path: Path, secrets: SecretStore
) -> None:
    folder = tmp_path / "demo-team"
    demo = await start_demo_team(folder, secrets=secrets)
    try:
        team = saved_team(folder, secrets=secrets)
        assert team is not None and team.account.email == ME[1]
        assert team.account.server_url == demo.url
        async with team.account.client(team.token) as client:
            assert (await client.me()).email == ME[1]
        assert demo.workspace.teammates == tuple(a for _, a in TEAMMATES[:2])
        for bot in demo.workspace.teammates:
            signed = await sign_in_to_team(
                server_url=demo.url, email=bot, password=DEMO_PASSWORD, device="bot"
            )
            assert signed.account.email == bot
        first_token = team.token
    finally:
        await demo.close()
    again = await start_demo_team(folder, secrets=secrets)
    try:
        team = saved_team(folder, secrets=secrets)
        assert again.url == demo.url and team is not None and team.account.server_url == demo.url
        assert team.token != first_token
    finally:
        await again.close()


async def test_d9_demo_team_starts_on_a_computer_without_a_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D9: the demo keeps its loopback token in memory: with no OS keyring (seen on a bare
    desktop: 'Only a plain-text keyring was found') it still signs the desktop in."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    folder = tmp_path / "demo-team"
    demo = await start_demo_team(folder)
    try:
        team = saved_team(folder, secrets=demo.secrets)
        assert team is not None and team.account.email == ME[1]
    finally:
        await demo.close()
