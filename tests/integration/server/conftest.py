"""The team server under test: the real aiohttp application on a loopback port, over a real
Service on SQLite then PostgreSQL (the `database_url` fixture), driven by a real HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from json import loads
from typing import Any

import pytest
from aiohttp import ClientSession, web

from services.api import LOCAL_OPERATOR, Service
from services.clock import ManualClock
from services.events import _last_position
from services.server.app import build_app
from tests.support.world import World, open_service, seed

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@customer.org"
PW = "correct horse battery"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(database_url: str, clock: ManualClock) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    """Ann (an administrator) and Bob (an agent) with passwords; Carl a customer; item 1."""
    w = await seed(svc)
    for email in (ANN, BOB):
        await svc.set_password(acting=LOCAL_OPERATOR, email=email, password=PW)
    return w


@pytest.fixture
async def base_url(svc: Service) -> AsyncIterator[str]:
    """The server's root URL on a free loopback port."""
    runner = web.AppRunner(build_app(svc), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def sign_in(http: ClientSession, base_url: str, email: str, password: str = PW) -> str:
    """A new session's token for `email`."""
    async with http.post(
        f"{base_url}/api/v1/sessions",
        json={"email": email, "password": password, "device": "test"},
    ) as response:
        assert response.status == 201, await response.text()
        body = await response.json()
    token = body["token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def customer_token(svc: Service, email: str = CARL) -> str:
    """A customer chat session's token (as the server opens one once the customer proved who
    they are)."""
    new = await svc.open_customer_session(
        acting=LOCAL_OPERATOR, email=email, device="chat", address="127.0.0.1"
    )
    return new.token


async def call(
    http: ClientSession,
    base_url: str,
    method: str,
    path: str,
    token: str | None = None,
    *,
    json: object = None,
    data: bytes | None = None,
) -> tuple[int, Any]:
    """One API call (`path` under /api/v1): its status and its JSON answer (None if empty;
    the text if it is not JSON)."""
    headers = bearer(token) if token else {}
    async with http.request(
        method, f"{base_url}/api/v1{path}", headers=headers, json=json, data=data
    ) as response:
        text = await response.text()
        if not text:
            return response.status, None
        try:
            return response.status, loads(text)
        except ValueError:
            return response.status, text


async def last_position(svc: Service) -> int:
    """The change feed's last position: it moves with every write."""
    return await svc.db.read(_last_position)
