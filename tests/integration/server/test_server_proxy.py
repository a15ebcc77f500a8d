"""The client's real address behind a reverse proxy (T4): X-Forwarded-For is believed only
when the direct peer is a trusted proxy, and then only the part that proxy wrote, so sign-in
throttling counts the real client and a client can never pick the address it is counted by."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiohttp import ClientSession, web

from services.api import LOCAL_OPERATOR, Service
from services.server.app import build_app
from services.server.keys import Network
from tests.integration.server.conftest import BOB, PW
from tests.support.world import World

Served = Callable[[Sequence[str]], AbstractAsyncContextManager[str]]


@pytest.fixture
def served(svc: Service) -> Served:
    """`async with served(["127.0.0.0/8"]) as url`: the server trusting those proxies."""

    @asynccontextmanager
    async def serve(trusted: Sequence[str]) -> AsyncIterator[str]:
        networks: list[Network] = [ipaddress.ip_network(n) for n in trusted]
        runner = web.AppRunner(
            build_app(svc, trusted_proxies=networks), access_log=None, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()

    return serve


async def _sign_in_from(http: ClientSession, url: str, forwarded: str | None) -> int:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    async with http.post(
        f"{url}/api/v1/sessions",
        json={"email": BOB, "password": PW, "device": "test"},
        headers=headers,
    ) as response:
        return response.status


async def _last_address(svc: Service) -> str:
    sessions = await svc.sessions(acting=LOCAL_OPERATOR, email=BOB)
    return max(sessions, key=lambda s: s.id).address


@pytest.mark.parametrize(
    "trusted",
    [[], ["10.0.0.0/8", "2001:db8::/32"]],
    ids=["no trusted proxy", "the peer is not a trusted proxy"],
)
async def test_t4_a_client_cannot_choose_its_address_with_x_forwarded_for(
    served: Served, svc: Service, http: ClientSession, world: World, trusted: list[str]
) -> None:
    async with served(trusted) as url:
        assert await _sign_in_from(http, url, "203.0.113.7") == 201
    assert await _last_address(svc) == "127.0.0.1"


async def test_t4_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_added(
    served: Served, svc: Service, http: ClientSession, world: World
) -> None:
    async with served(["127.0.0.1/32", "10.0.0.0/8"]) as url:
        # The client wrote 198.51.100.9 itself; the proxy appended the peer it saw.
        assert await _sign_in_from(http, url, "198.51.100.9, 203.0.113.7") == 201
        assert await _last_address(svc) == "203.0.113.7"
        # Two trusted proxies in a row (a load balancer, then this one): skipped.
        assert await _sign_in_from(http, url, "198.51.100.9, 203.0.113.8, 10.1.2.3") == 201
        assert await _last_address(svc) == "203.0.113.8"
        # No header from the trusted proxy: the proxy is the client.
        assert await _sign_in_from(http, url, None) == 201
        assert await _last_address(svc) == "127.0.0.1"
        # A garbled entry: nothing left of it is believed.
        assert await _sign_in_from(http, url, "203.0.113.9, not-an-address") == 201
        assert await _last_address(svc) == "127.0.0.1"


async def test_t4_throttling_counts_the_real_client_behind_a_trusted_proxy(
    served: Served, http: ClientSession, world: World
) -> None:
    """One client's failures throttle that client, not everyone behind the same proxy."""
    async with served(["127.0.0.1/32"]) as url:
        statuses = []
        for n in range(25):
            async with http.post(
                f"{url}/api/v1/sessions",
                json={"email": f"guess{n}@example.com", "password": "wrong!", "device": "x"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            ) as response:
                statuses.append(response.status)
        assert statuses[0] == 401 and statuses[-1] == 429
        assert await _sign_in_from(http, url, "203.0.113.7") == 429
        assert await _sign_in_from(http, url, "203.0.113.8") == 201
