"""The event stream through a real WebSocket on loopback (T1, T4, R2, S4), on SQLite and on
PostgreSQL: typed events with a cursor, catching up with no gap and no duplicate, resync for
a cursor too old, a revoked session's stream closed with 4401, a slow client told to resync."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType

from services.api import LOCAL_OPERATOR, ConversationKind, PersonKind, Service
from services.clock import ManualClock
from services.errors import AuthenticationError
from services.events import KEEP
from services.server import events as server_events
from services.server_client import events
from tests.integration.server.conftest import ANN, BOB, CARL, PW, bearer, sign_in
from tests.support.world import World

DEADLINE_S = 60  # generous: the machine is shared and can be slow


@pytest.fixture
async def live(svc: Service) -> Service:
    """The service with its change feed running, as `deskbell serve` runs it."""
    await svc.start(mail=False)
    return svc


async def connect(
    http: ClientSession, base_url: str, token: str, after: int | None = None
) -> ClientWebSocketResponse:
    query = "" if after is None else f"?after={after}"
    return await http.ws_connect(f"{base_url}/api/v1/events{query}", headers=bearer(token))


async def next_event(ws: ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), DEADLINE_S)
    assert message.type is WSMsgType.TEXT, (message.type, message.data, ws.close_code)
    event = json.loads(message.data)
    assert isinstance(event, dict)
    return event


async def until(ws: ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Every event up to and including the first of type `kind`."""
    seen = []
    while True:
        event = await next_event(ws)
        seen.append(event)
        if event["type"] == kind:
            return seen


async def until_message(ws: ClientWebSocketResponse, text: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        event = await next_event(ws)
        seen.append(event)
        if event["type"] == "message" and event.get("message", {}).get("text") == text:
            return seen


async def drain(stream: AsyncIterator[dict[str, Any]]) -> None:
    async for _event in stream:
        pass


async def post(svc: Service, text: str, *, kind: str = "internal", author: str = ANN) -> int:
    posted = await svc.post(author=author, text=text, item_number=1, kind=ConversationKind(kind))
    return posted.message_id


async def test_t1_a_stream_sends_ready_then_each_change_typed_as_it_commits(
    http: ClientSession, base_url: str, world: World, live: Service
) -> None:
    """T1: after the handshake, "ready" with the newest position; then a message event
    carrying the message as the viewer may see it, and a seen event naming messages and who
    (S4: seen on any device counts everywhere)."""
    token = await sign_in(http, base_url, BOB)
    async with await connect(http, base_url, token) as ws:
        ready = await next_event(ws)
        assert ready["type"] == "ready"
        message_id = await post(live, "The toner is smoking", kind="external")
        [event] = await until_message(ws, "The toner is smoking")
        assert event["position"] > ready["position"]
        assert event["action"] == "posted"
        assert event["conversation_kind"] == "external"
        assert event["item_number"] == 1
        message = event["message"]
        assert message["id"] == message_id
        assert message["author"]["email"] == ANN
        assert message["item_number"] == 1
        assert message["created_at"].startswith(live.clock.now().date().isoformat())
        await live.mark_seen(person_id=world.bob, message_ids=[message_id])
        seen = await until(ws, "seen")
        assert seen[-1]["message_ids"] == [message_id]
        assert seen[-1]["person"]["email"] == BOB
        assert seen[-1]["position"] > event["position"]


async def test_t1_reconnecting_with_the_last_position_catches_up_with_no_gap_or_duplicate(
    http: ClientSession, base_url: str, world: World, live: Service
) -> None:
    """T1: posts keep coming while the client is away and while it reconnects; with the last
    position it received it gets each one exactly once, in position order."""
    token = await sign_in(http, base_url, BOB)
    posted: list[int] = []
    async with await connect(http, base_url, token) as ws:
        await until(ws, "ready")
        for n in range(3):
            posted.append(await post(live, f"before {n}"))
        received = await until_message(ws, "before 2")
    last = received[-1]["position"]
    for n in range(5):
        posted.append(await post(live, f"away {n}"))

    async def more() -> None:
        for n in range(10):
            posted.append(await post(live, f"during {n}"))
        posted.append(await post(live, "last one"))

    writer = asyncio.create_task(more())
    async with await connect(http, base_url, token, after=last) as ws:
        received += await until_message(ws, "last one")
    await writer
    got = [e for e in received if e["type"] == "message"]
    ids = [e["message"]["id"] for e in got]
    assert sorted(ids) == sorted(posted) and len(ids) == len(set(ids))
    positions = [e["position"] for e in received if e["type"] not in ("ready",)]
    assert positions == sorted(positions) and len(positions) == len(set(positions))


async def test_t1_a_cursor_older_than_the_feed_keeps_gets_resync_then_live_changes(
    http: ClientSession, base_url: str, world: World, live: Service, clock: ManualClock
) -> None:
    token = await sign_in(http, base_url, BOB)
    await post(live, "old news")
    clock.advance(KEEP.total_seconds() + 60)
    await live.feed.purge()
    await post(live, "after the purge")
    for cursor in (1, 10**12):  # purged away; never handed out
        async with await connect(http, base_url, token, after=cursor) as ws:
            resync = await next_event(ws)
            assert resync["type"] == "resync"
            ready = await next_event(ws)
            assert ready == {"type": "ready", "position": resync["position"]}
            await post(live, f"live {cursor}")
            [event] = await until_message(ws, f"live {cursor}")
            assert event["position"] > resync["position"]


async def test_t1_an_up_to_date_cursor_gets_no_resync(
    http: ClientSession, base_url: str, world: World, live: Service
) -> None:
    token = await sign_in(http, base_url, BOB)
    async with await connect(http, base_url, token) as ws:
        ready = await next_event(ws)
    async with await connect(http, base_url, token, after=ready["position"]) as ws:
        assert await next_event(ws) == ready


async def test_t1_a_bad_cursor_or_a_plain_get_is_a_clear_400_and_no_token_a_401(
    http: ClientSession, base_url: str, world: World, live: Service
) -> None:
    token = await sign_in(http, base_url, BOB)
    for query in ("?after=-1", "?after=abc"):
        async with http.get(f"{base_url}/api/v1/events{query}", headers=bearer(token)) as r:
            assert r.status == 400
            assert (await r.json())["error"]["type"] == "InputError"
    async with http.get(f"{base_url}/api/v1/events", headers=bearer(token)) as r:
        assert r.status == 400
    async with http.get(f"{base_url}/api/v1/events") as r:
        assert r.status == 401


@pytest.mark.parametrize("how", ["sign-out", "ended-by-admin", "new-password"])
async def test_t4_a_session_that_ends_closes_its_open_streams_with_4401(
    http: ClientSession, base_url: str, world: World, live: Service, how: str
) -> None:
    """T4: a revoked token stops working at once, including on an open event stream."""
    token = await sign_in(http, base_url, BOB)
    other = await sign_in(http, base_url, ANN)
    stream = events(base_url, token)
    watcher = events(base_url, other)
    assert (await anext(stream))["type"] == "ready"
    assert (await anext(watcher))["type"] == "ready"
    if how == "sign-out":
        async with http.delete(f"{base_url}/api/v1/sessions/current", headers=bearer(token)):
            pass
    elif how == "ended-by-admin":
        [session] = await live.sessions(acting=LOCAL_OPERATOR, email=BOB)
        await live.end_session(acting=LOCAL_OPERATOR, session_id=session.id)
    else:
        await live.set_password(acting=LOCAL_OPERATOR, email=BOB, password=PW + " again")
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(drain(stream), DEADLINE_S)
    # Another person's stream stays open and hears what it may of it.
    await post(live, "still here")
    async with asyncio.timeout(DEADLINE_S):
        async for event in watcher:
            if event["type"] == "message":
                break
    await watcher.aclose()


async def test_t4_only_the_ended_session_closes_not_the_persons_other_one(
    http: ClientSession, base_url: str, world: World, live: Service
) -> None:
    first = await sign_in(http, base_url, BOB)
    second = await sign_in(http, base_url, BOB)
    async with (
        await connect(http, base_url, first) as ws1,
        await connect(http, base_url, second) as ws2,
    ):
        await until(ws1, "ready")
        await until(ws2, "ready")
        async with http.delete(f"{base_url}/api/v1/sessions/current", headers=bearer(first)):
            pass
        closing = await asyncio.wait_for(ws1.receive(), DEADLINE_S)
        assert closing.type is WSMsgType.CLOSE and closing.data == 4401
        await post(live, "for the second")
        await until_message(ws2, "for the second")


@pytest.mark.parametrize("bound", [("QUEUE_MAX", 3), ("QUEUE_MAX_CHARS", 600)])
async def test_t1_a_slow_client_is_told_to_resync_and_the_server_keeps_a_bounded_queue(
    http: ClientSession,
    base_url: str,
    world: World,
    live: Service,
    monkeypatch: pytest.MonkeyPatch,
    bound: tuple[str, int],
) -> None:
    """More changes at once than a stream may queue (in number, or in text): its queue is
    dropped for a resync at the newest of them, then the changes after it flow again."""
    monkeypatch.setattr(server_events, *bound)
    token = await sign_in(http, base_url, BOB)
    numbers = [
        (await live.create_item(title=f"Item {n}", followers=[ANN, BOB])).number for n in range(6)
    ]
    ids = []
    for number in numbers:
        posted = await live.post(
            author=ANN, text="x", item_number=number, kind=ConversationKind.INTERNAL
        )
        ids.append(posted.message_id)
    async with await connect(http, base_url, token) as ws:
        await until(ws, "ready")
        # One transaction, six conversations: six seen changes in one batch of the feed.
        await live.mark_seen(person_id=world.bob, message_ids=ids)
        got = await until(ws, "resync")
        assert len(got) <= 3
        await post(live, "after the flood")
        after = await until_message(ws, "after the flood")
        assert after[-1]["position"] > got[-1]["position"]


async def test_r2_a_customer_stream_carries_only_their_external_conversations(
    http: ClientSession, base_url: str, world: World, live: Service
) -> None:
    """R2: no internal message, its existence or a count; nothing of another customer; no
    administration (emails, settings)."""
    await live.add_person(email="dora@customer.org", name="Dora", kind=PersonKind.CUSTOMER)
    other = await live.create_item(title="Dora's item", followers=["dora@customer.org", ANN])
    opened = await live.open_customer_session(
        acting=LOCAL_OPERATOR, email=CARL, device="chat", address="127.0.0.1"
    )
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in events(base_url, opened.token, after=0):
            seen.append(event)
            if event.get("message", {}).get("text") == "the end":
                return

    follower = asyncio.create_task(follow())
    secret = await post(live, "internal secret")
    await post(live, "for dora only", kind="external")  # item 1: Carl follows it
    await live.post(
        author=ANN, text="dora private", item_number=other.number, kind=ConversationKind.EXTERNAL
    )
    await live.set_config("unseen_delay_s", "120")
    await live.mark_seen(person_id=world.bob, message_ids=[secret])
    await post(live, "the end", kind="external")
    await asyncio.wait_for(follower, DEADLINE_S)
    text = json.dumps(seen)
    assert "internal secret" not in text and "dora private" not in text
    assert "dora@customer.org" not in text and ANN not in text and BOB not in text
    kinds = {e["type"] for e in seen}
    assert kinds <= {"message", "seen", "item", "follow", "person", "ready", "resync"}
    item = await live.item(1)
    for event in seen:
        if "conversation_id" in event:
            assert event["conversation_id"] == item.external_conversation_id
        assert "internal_conversation_id" not in json.dumps(event)
    assert any(e.get("message", {}).get("text") == "for dora only" for e in seen)


async def test_t1_the_server_stopping_closes_its_streams(
    svc: Service, world: World, live: Service
) -> None:
    """Shutting down does not wait on open streams: they are told the server is going away."""
    from aiohttp import web

    from services.server.app import build_app

    runner = web.AppRunner(build_app(svc), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    async with ClientSession() as http:
        token = await sign_in(http, url, BOB)
        async with await connect(http, url, token) as ws:
            await until(ws, "ready")
            await asyncio.wait_for(runner.cleanup(), DEADLINE_S)
            closing = await asyncio.wait_for(ws.receive(), DEADLINE_S)
            assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
