"""T4: the desktop signs in to a real team server on loopback (services.team.signin), each
failure its own error, the token kept in the keyring and never in the account file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.errors import (
    AuthenticationError,
    InputError,
    ServerUnreachableError,
    TooManyAttemptsError,
    UntrustedCertificateError,
)
from services.secrets import SecretStore
from services.server_client import ServerClient, path
from services.team.account import AccountStore, TeamAccount
from services.team.signin import (
    end_team_session,
    request_password_reset,
    set_password_with_code,
    sign_in_to_team,
)
from tests.support.smtpd import SmtpServer, free_port
from tests.support.team_server import BOB, PW, TeamServer, reset_code, team_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TeamServer]:
    with SmtpServer() as smtp:
        async with team_server(tmp_path, smtp=smtp) as running:
            yield running


async def test_t4_sign_in_keeps_the_token_in_the_keyring_not_in_the_file(
    server: TeamServer, tmp_path: Path, secrets: SecretStore
) -> None:
    new = await sign_in_to_team(
        server_url=server.url + "/", email=BOB, password=PW, device="laptop"
    )
    assert new.account == TeamAccount(
        server_url=server.url, email=BOB, person_id=new.account.person_id, name="Bob Agent"
    )
    store = AccountStore(tmp_path / "data", secrets=secrets)
    store.save(new.account, new.token)
    assert new.token not in store.path.read_text()
    again = AccountStore(tmp_path / "data", secrets=secrets)
    assert again.load() == new.account
    assert again.token(new.account) == new.token
    async with new.account.client(new.token) as client:
        assert (await client.me()).email == BOB


async def test_t4_a_closed_port_is_unreachable() -> None:
    with pytest.raises(ServerUnreachableError, match="refused"):
        await sign_in_to_team(
            server_url=f"http://127.0.0.1:{free_port()}", email=BOB, password=PW, device="d"
        )


async def test_t4_a_wrong_password_is_an_authentication_error(server: TeamServer) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await sign_in_to_team(
            server_url=server.url, email=BOB, password="not it at all", device="d"
        )
    assert not isinstance(caught.value, TooManyAttemptsError)


async def test_t4_repeated_failures_are_throttled_with_a_time_to_try_again(
    server: TeamServer,
) -> None:
    refusals: list[AuthenticationError] = []
    for _ in range(10):
        with pytest.raises(AuthenticationError) as caught:
            await sign_in_to_team(
                server_url=server.url, email=BOB, password="wrong one!", device="d"
            )
        refusals.append(caught.value)
        if isinstance(caught.value, TooManyAttemptsError):
            break
    throttled = refusals[-1]
    assert isinstance(throttled, TooManyAttemptsError) and len(refusals) == 6
    assert "try again" in str(throttled) and throttled.retry_at is not None


async def test_t4_a_bad_address_is_an_input_error() -> None:
    with pytest.raises(InputError):
        await sign_in_to_team(server_url="desk.example.com", email=BOB, password=PW, device="d")


async def test_t4_self_signed_certificate_untrusted_then_trusted_by_pin(tmp_path: Path) -> None:
    async with team_server(tmp_path, tls=True) as server:
        with pytest.raises(UntrustedCertificateError) as caught:
            await sign_in_to_team(server_url=server.url, email=BOB, password=PW, device="d")
        pin = caught.value.fingerprint
        assert pin is not None and len(pin) == 95
        new = await sign_in_to_team(
            server_url=server.url, email=BOB, password=PW, device="d", pin_sha256=pin
        )
        assert new.account.pin_sha256 == pin
        async with new.account.client(new.token) as client:
            assert (await client.me()).email == BOB


async def test_t4_m5_forgot_password_with_the_emailed_code(server: TeamServer) -> None:
    await request_password_reset(server_url=server.url, email=BOB)
    code = await reset_code(server, BOB)
    with pytest.raises(AuthenticationError):
        await set_password_with_code(
            server_url=server.url, email=BOB, code="00000000", password="x" * 12
        )
    await request_password_reset(server_url=server.url, email=BOB)
    code = await reset_code(server, BOB)
    await set_password_with_code(
        server_url=server.url, email=BOB, code=code, password="a whole new password"
    )
    new = await sign_in_to_team(
        server_url=server.url, email=BOB, password="a whole new password", device="d"
    )
    assert new.account.email == BOB


async def test_t4_sign_out_ends_the_session_on_the_server(
    server: TeamServer, tmp_path: Path, secrets: SecretStore
) -> None:
    new = await sign_in_to_team(server_url=server.url, email=BOB, password=PW, device="d")
    store = AccountStore(tmp_path / "data", secrets=secrets)
    store.save(new.account, new.token)
    async with new.account.client(new.token) as client:
        assert await end_team_session(client) is None
    store.remove(new.account)
    assert store.load() is None and store.token(new.account) is None
    async with ServerClient(server.url, new.token) as client:
        with pytest.raises(AuthenticationError):
            await client.call("GET", path("me"))


async def test_t4_sign_out_while_the_server_is_away_says_the_session_stays() -> None:
    port = free_port()
    async with ServerClient(f"http://127.0.0.1:{port}", "token") as client:
        left = await end_team_session(client)
    assert left is not None and "stays in its list" in left


def test_t4_an_unreadable_account_file_is_one_clear_error(
    tmp_path: Path, secrets: SecretStore
) -> None:
    store = AccountStore(tmp_path, secrets=secrets)
    store.folder.mkdir()
    store.path.write_text("{not json")
    with pytest.raises(InputError, match="sign in again"):
        store.load()
