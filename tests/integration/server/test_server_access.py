"""Who may call what (T4, R2), over the whole route table: every API call refuses a missing or
forged token; an agent is refused every administrator's call; a customer's chat session every
call not open to customers; a refused call changes nothing. The calls come from the route
declarations, so a new one is covered without touching this file."""

from __future__ import annotations

import re

from aiohttp import ClientSession, web

from services.api import Service
from services.clock import ManualClock
from services.server.app import ROUTE_TABLES
from services.server.auth import Access
from services.server.endpoints import Endpoint, endpoint_of
from tests.integration.server.conftest import (
    ANN,
    BOB,
    PW,
    call,
    customer_token,
    last_position,
    sign_in,
)
from tests.support.world import World


def declared() -> list[Endpoint]:
    found = (
        endpoint_of(route.handler)
        for table in ROUTE_TABLES
        for route in table
        if isinstance(route, web.RouteDef)
    )
    return [e for e in found if e is not None]


def sample_path(endpoint: Endpoint) -> str:
    """The call's path under /api/v1 with a plausible value for each parameter."""
    kinds = {p.name: p.kind for p in endpoint.params}
    path = endpoint.path.removeprefix("/api/v1")
    return re.sub(r"{(\w+)}", lambda m: "1" if "int" in str(kinds[m[1]]) else BOB, path)


async def refusals(
    http: ClientSession, base_url: str, token: str | None, endpoints: list[Endpoint]
) -> list[str]:
    """Each call made with `token`, answered otherwise than its expected refusal."""
    wrong = []
    for endpoint in endpoints:
        expected = 401 if token is None or token == "forged" else 403
        status, body = await call(
            http, base_url, endpoint.method, sample_path(endpoint), token, json={}
        )
        if status != expected:
            wrong.append(f"{endpoint.method} {endpoint.path}: {status} {body}")
    return wrong


def test_t4_the_route_table_declares_calls_for_every_kind_of_caller() -> None:
    kinds = {e.access for e in declared()}
    assert kinds == set(Access)
    assert len(declared()) > 50


async def test_t4_every_call_refuses_a_missing_or_forged_token(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    closed = [e for e in declared() if e.access is not Access.PUBLIC]
    before = await last_position(svc)
    assert await refusals(http, base_url, None, closed) == []
    assert await refusals(http, base_url, "forged", closed) == []
    assert await last_position(svc) == before


async def test_t4_an_agent_is_refused_every_admin_call_and_it_changes_nothing(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    agent = await sign_in(http, base_url, BOB)
    before = await last_position(svc)
    admin_only = [e for e in declared() if e.access is Access.ADMIN]
    assert await refusals(http, base_url, agent, admin_only) == []
    assert await last_position(svc) == before
    status, me = await call(http, base_url, "GET", "/me", agent)
    assert (status, me["email"]) == (200, BOB)


async def test_t4_r2_a_customer_is_refused_every_call_not_open_to_customers(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    customer = await customer_token(svc)
    before = await last_position(svc)
    closed = [e for e in declared() if e.access in (Access.USER, Access.ADMIN)]
    assert await refusals(http, base_url, customer, closed) == []
    assert await last_position(svc) == before
    status, me = await call(http, base_url, "GET", "/me", customer)
    assert status == 200 and me["customer"] is True


async def test_t4_a_revoked_token_stops_working_at_the_next_call(
    http: ClientSession, base_url: str, world: World
) -> None:
    agent = await sign_in(http, base_url, BOB)
    admin = await sign_in(http, base_url, ANN)
    status, sessions = await call(http, base_url, "GET", f"/users/{BOB}/sessions", agent)
    assert status == 200 and len(sessions) == 1
    # An agent may not end another's session; an administrator may.
    status, ann_sessions = await call(http, base_url, "GET", f"/users/{ANN}/sessions", admin)
    status, body = await call(http, base_url, "DELETE", f"/sessions/{ann_sessions[0]['id']}", agent)
    assert (status, body["error"]["type"]) == (403, "PermissionDeniedError")
    status, ended = await call(http, base_url, "DELETE", f"/sessions/{sessions[0]['id']}", admin)
    assert status == 200 and ended["ended_at"] is not None
    status, body = await call(http, base_url, "GET", "/items", agent)
    assert (status, body["error"]["type"]) == (401, "AuthenticationError")
    assert (await call(http, base_url, "GET", "/items", admin))[0] == 200


async def test_t4_repeated_wrong_passwords_are_throttled_with_retry_after(
    http: ClientSession, base_url: str, world: World, clock: ManualClock
) -> None:
    form = {"email": BOB, "password": "not the password", "device": "test"}
    statuses = []
    for _ in range(12):
        async with http.post(f"{base_url}/api/v1/sessions", json=form) as response:
            statuses.append(response.status)
            if response.status == 429:
                wait = int(response.headers["Retry-After"])
                body = await response.json()
                break
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert body["error"]["type"] == "TooManyAttemptsError"
    assert 1 <= wait <= 15 * 60
    # While it waits, even the right password is refused; once waited out, it works.
    right = {**form, "password": PW}
    async with http.post(f"{base_url}/api/v1/sessions", json=right) as response:
        assert response.status == 429
    clock.advance(wait)
    assert await sign_in(http, base_url, BOB)
