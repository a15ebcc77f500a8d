"""The server client against the real server (T4, T6): signing in and out and asking who one
is over real HTTP on loopback, on SQLite then PostgreSQL; the server's refusals come back as
the service's own errors with the same message the service gives locally."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.api import Service
from services.errors import AuthenticationError, PermissionDeniedError, TooManyAttemptsError
from services.remote import RemoteService
from services.server_client import ServerClient
from tests.integration.server.conftest import ANN, BOB, PW
from tests.support.world import World


@pytest.fixture
async def client(base_url: str, world: World) -> AsyncIterator[ServerClient]:
    async with ServerClient(base_url) as c:
        yield c


async def test_t6_signing_in_keeps_the_token_and_says_who(client: ServerClient) -> None:
    who = await client.sign_in(email=BOB, password=PW, device="laptop")
    assert (who.email, who.is_admin, who.customer) == (BOB, False, False)
    assert client.token
    assert await client.me() == who


async def test_t6_a_wrong_password_is_the_services_own_refusal(
    client: ServerClient, svc: Service
) -> None:
    with pytest.raises(AuthenticationError) as remote:
        await client.sign_in(email=BOB, password="wrong password", device="laptop")
    with pytest.raises(AuthenticationError) as local:
        await svc.sign_in(
            email=BOB, password="wrong password", device="laptop", address="192.0.2.9"
        )
    assert type(remote.value) is AuthenticationError
    assert str(remote.value) == str(local.value)
    assert client.token is None


async def test_t6_too_many_wrong_passwords_say_when_to_try_again(client: ServerClient) -> None:
    throttled: list[TooManyAttemptsError] = []
    for _ in range(50):
        try:
            await client.sign_in(email=BOB, password="wrong password", device="laptop")
        except TooManyAttemptsError as exc:
            throttled.append(exc)
            break
        except AuthenticationError:
            continue
    [refusal] = throttled  # fifty wrong passwords are throttled, and say until when
    assert refusal.retry_at > datetime.now(UTC)


async def test_t6_signing_out_ends_the_token_at_once(client: ServerClient) -> None:
    await client.sign_in(email=ANN, password=PW, device="laptop")
    token = client.token
    await client.sign_out()
    assert client.token is None
    client.token = token
    with pytest.raises(AuthenticationError, match="sign in again"):
        await client.me()


async def test_t6_the_remote_service_acts_only_as_the_signed_in_user(
    client: ServerClient,
) -> None:
    await client.sign_in(email=BOB, password=PW, device="laptop")
    remote = RemoteService(client)
    assert (await remote.who()).email == BOB
    with pytest.raises(PermissionDeniedError, match=f"as {BOB}, so you act as yourself"):
        await remote.post(author=ANN, text="not mine to say", item_number=1)
    with pytest.raises(PermissionDeniedError):
        await remote.mark_item_seen(number=1, email=ANN)
    with pytest.raises(PermissionDeniedError):
        await remote.clear_bounces(address=BOB, acting=ANN)
