"""The server's front door through real HTTP on loopback (T1, T4): health and readiness,
signing in and out, and a token checked on every call."""

from __future__ import annotations

from aiohttp import ClientSession

from tests.integration.server.conftest import ANN, BOB, bearer, sign_in
from tests.support.world import World


async def test_t1_healthz_and_readyz_answer_without_a_token(
    http: ClientSession, base_url: str
) -> None:
    async with http.get(f"{base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with http.get(f"{base_url}/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready"}


async def test_t4_an_api_call_without_a_token_or_with_a_forged_one_is_refused(
    http: ClientSession, base_url: str, world: World
) -> None:
    for headers in ({}, bearer("forged"), {"Authorization": "Basic YW5uOnB3"}):
        async with http.get(f"{base_url}/api/v1/me", headers=headers) as response:
            assert response.status == 401
            body = await response.json()
            assert body["error"]["type"] == "AuthenticationError"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_t4_signing_in_gives_a_token_that_says_who_asks(
    http: ClientSession, base_url: str, world: World
) -> None:
    token = await sign_in(http, base_url, BOB)
    async with http.get(f"{base_url}/api/v1/me", headers=bearer(token)) as response:
        assert response.status == 200
        me = await response.json()
    assert (me["email"], me["is_admin"]) == (BOB, False)
    admin = await sign_in(http, base_url, ANN)
    async with http.get(f"{base_url}/api/v1/me", headers=bearer(admin)) as response:
        assert (await response.json())["is_admin"] is True


async def test_t4_a_wrong_password_is_refused_with_the_same_answer_as_an_unknown_account(
    http: ClientSession, base_url: str, world: World
) -> None:
    answers = []
    for email in (BOB, "nobody@example.com"):
        async with http.post(
            f"{base_url}/api/v1/sessions",
            json={"email": email, "password": "wrong password", "device": "test"},
        ) as response:
            answers.append((response.status, await response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401


async def test_t4_signing_out_stops_the_token_at_once(
    http: ClientSession, base_url: str, world: World
) -> None:
    token = await sign_in(http, base_url, BOB)
    async with http.delete(f"{base_url}/api/v1/sessions/current", headers=bearer(token)) as r:
        assert r.status == 204
    async with http.get(f"{base_url}/api/v1/me", headers=bearer(token)) as response:
        assert response.status == 401


async def test_t4_a_body_that_is_not_a_json_object_is_a_clear_400(
    http: ClientSession, base_url: str, world: World
) -> None:
    for body in (b"not json", b"[1, 2]", b'{"email": 5}'):
        async with http.post(
            f"{base_url}/api/v1/sessions", data=body, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["type"] == "InputError"
