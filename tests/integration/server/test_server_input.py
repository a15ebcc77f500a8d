"""Bad input gets one clear 400 and changes nothing (T1, T4): a path's number that is not
one or is out of range, an unknown choice, a field of the wrong type or one the call does not
take (nobody names who acts: that is the token's person), a text too long."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession

from services.api import Service
from tests.integration.server.conftest import ANN, BOB, call, last_position, sign_in
from tests.support.world import World

BAD: list[tuple[str, str, Any]] = [
    ("GET", "/items/abc", None),
    ("GET", "/items/0", None),
    ("GET", "/items/1.5", None),
    ("GET", "/items/99999999999", None),
    ("GET", "/conversations?limit=0", None),
    ("GET", "/conversations?limit=100000", None),
    ("GET", "/conversations?limit=1&limit=2", None),
    ("GET", "/conversations?inbox=spam", None),
    ("GET", "/conversations?ids=x", None),
    ("GET", "/conversations?offset=-1", None),
    ("GET", "/conversations?viewer_id=2", None),
    ("GET", "/items?as=bob@example.com", None),
    ("GET", "/conversations/search", None),
    ("GET", "/conversations/search?text=" + "x" * 600, None),
    ("GET", "/people?kind=robot", None),
    ("GET", "/bounces?blocked_only=maybe", None),
    ("GET", "/emails?status=bogus", None),
    ("POST", "/items", [1]),
    ("POST", "/items", {"title": 5}),
    ("POST", "/items", {"title": "t", "followers": "ann@example.com"}),
    ("POST", "/items/1/messages", {"kind": "direct", "text": "x"}),
    ("POST", "/items/1/messages", {"kind": "internal", "text": 5}),
    ("POST", "/items/1/messages", {"kind": "internal", "text": "x", "author": BOB}),
    ("POST", "/items/1/messages", {"kind": "internal", "text": "x" * 200_000}),
    ("POST", "/seen", {"message_ids": ["1"]}),
    ("POST", "/seen", {"message_ids": [2**40]}),
    ("POST", "/seen", {"message_ids": [1] * 5001}),
    ("PUT", f"/people/{BOB}/do-not-disturb", {"choice": "2h"}),
    ("PUT", f"/people/{BOB}/notifications", {"delay_s": "soon"}),
    ("PUT", "/items/1/status", {"status": "exploded"}),
    ("POST", "/users", {"email": "x@example.com", "name": "X", "admin": "yes"}),
]


async def test_t1_bad_input_is_one_clear_400_and_changes_nothing(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    admin = await sign_in(http, base_url, ANN)
    before = await last_position(svc)
    wrong = []
    for method, path, body in BAD:
        status, answer = await call(http, base_url, method, path, admin, json=body)
        if status != 400 or answer["error"]["type"] not in ("InputError", "TemplateError"):
            wrong.append(f"{method} {path[:60]} {str(body)[:60]}: {status} {answer}")
        elif len(answer["error"]["message"]) > 600:
            wrong.append(f"{method} {path[:60]}: a message of {len(answer['error']['message'])}")
    for data in (b"not json", b""):
        status, answer = await call(http, base_url, "POST", "/items", admin, data=data)
        if status != 400:
            wrong.append(f"POST /items {data!r}: {status} {answer}")
    status, answer = await call(http, base_url, "POST", "/mail", admin, data=b"")
    if status != 400:
        wrong.append(f"POST /mail empty: {status} {answer}")
    assert wrong == []
    assert await last_position(svc) == before
