"""C1, C2, S5: the chat page's live stream and seen marks through real HTTP on loopback: an
agent's message reaches the open page, the customer's seen mark is recorded as theirs (and
never emailed after), agents see it, and the customer counts as in the chat while a page
is connected."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, WSServerHandshakeError
from sqlalchemy import select

from services.api import LOCAL_OPERATOR, ConversationKind, Service
from services.chat import PRESENCE_TTL
from services.clock import ManualClock
from services.store.models import Email
from tests.integration.server.chat_support import browser, csrf_of, enter, link_for
from tests.integration.server.conftest import (
    ANN,
    BOB,
    CARL,
    bearer,
    call,
    customer_token,
    sign_in,
)
from tests.support.world import World


@pytest.fixture
async def live(svc: Service) -> Service:
    """The service with its change feed running, as `deskbell serve` runs it."""
    await svc.start(mail=False)
    return svc


async def _open_page(svc: Service, http: ClientSession, base_url: str, world: World) -> str:
    external = (await svc.item(world.item)).external_conversation_id
    link = link_for(svc, base_url, conversation_id=external, person_id=world.carl)
    assert (await enter(http, link))[0] == 303
    async with http.get(f"{base_url}/chat/c/{external}") as response:
        assert response.status == 200
        return await response.text()


async def _next(ws: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next event of `kind` (a generous deadline: the machine may be slow)."""
    while True:
        message = await ws.receive(timeout=60)
        assert message.type is WSMsgType.TEXT, message
        event = json.loads(message.data)
        if event["type"] == kind:
            assert isinstance(event, dict)
            return event


async def _until(check: Any, what: str) -> None:
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_c2_s5_a_live_message_seen_in_the_chat_is_the_customers_and_never_emailed(
    live: Service, svc: Service, world: World, base_url: str, clock: ManualClock
) -> None:
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        page = await _open_page(svc, http, base_url, world)
        position = re.search(r'data-position="(\d+)"', page)
        assert position
        url = f"{base_url}/chat/live?after={position.group(1)}"
        async with http.ws_connect(url, headers={"Origin": base_url}) as ws:
            await _next(ws, "ready")
            assert await svc.customers_in_chat([world.carl, world.bob]) == {world.carl}
            posted = await svc.post(author=ANN, text="Try it now", conversation_id=external)
            event = await _next(ws, "message")
            assert event["message"]["id"] == posted.message_id
            assert event["message"]["text"] == "Try it now"
            async with http.post(
                f"{base_url}/chat/seen",
                json={"message_ids": [posted.message_id]},
                headers={"X-CSRF-Token": csrf_of(page)},
            ) as response:
                assert response.status == 204
            seen = await _next(ws, "seen")
            assert seen["message_ids"] == [posted.message_id]
        await _until(
            lambda: _in_chat(svc, world.carl, expected=False), "the customer left the chat"
        )
    [row] = [
        m
        for m in await svc.messages(conversation_id=external, viewer_id=world.ann)
        if m.id == posted.message_id
    ]
    assert [s.email for s in row.status.seen] == [CARL]  # "Seen by Carl Customer"
    clock.advance(3600)
    await svc.run_scheduler_once()
    emailed = await svc.db.read(
        lambda tx: tx.conn.execute(
            select(Email.id).where(Email.recipient_id == world.carl, Email.kind == "notification")
        ).all()
    )
    assert emailed == []  # S3, S5: seen in the chat, never emailed


async def _in_chat(svc: Service, person_id: int, *, expected: bool) -> bool:
    return (person_id in await svc.customers_in_chat([person_id])) is expected


@pytest.mark.parametrize(
    "origin", [None, "https://evil.example", "http://127.0.0.1.evil.example", "null"]
)
async def test_c3_the_live_stream_refuses_other_origins(
    svc: Service, world: World, base_url: str, origin: str | None
) -> None:
    async with browser(base_url) as http:
        await _open_page(svc, http, base_url, world)
        headers = {"Origin": origin} if origin else {}
        with pytest.raises(WSServerHandshakeError) as refused:
            async with http.ws_connect(f"{base_url}/chat/live", headers=headers):
                pass
        assert refused.value.status == 403


async def test_c1_the_live_stream_needs_a_session_and_closes_when_it_ends(
    live: Service, svc: Service, world: World, base_url: str
) -> None:
    async with browser(base_url) as stranger:
        with pytest.raises(WSServerHandshakeError) as refused:
            async with stranger.ws_connect(f"{base_url}/chat/live", headers={"Origin": base_url}):
                pass
        assert refused.value.status == 401
    async with browser(base_url) as http:
        await _open_page(svc, http, base_url, world)
        async with http.ws_connect(f"{base_url}/chat/live", headers={"Origin": base_url}) as ws:
            await _next(ws, "ready")
            [session] = await svc.sessions(acting=LOCAL_OPERATOR, email=CARL)
            await svc.end_session(acting=LOCAL_OPERATOR, session_id=session.id)
            message = await ws.receive(timeout=60)
            assert message.type is WSMsgType.CLOSE and message.data == 4401
        async with http.get(f"{base_url}/chat/c/1") as response:
            assert response.status == 401  # the cookie's session is over


async def test_c1_the_page_posts_into_the_conversation_and_agents_get_it(
    svc: Service, world: World, base_url: str
) -> None:
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        page = await _open_page(svc, http, base_url, world)
        async with http.post(
            f"{base_url}/chat/c/{external}/messages",
            json={"text": "Still broken <b>really</b>"},
            headers={"X-CSRF-Token": csrf_of(page)},
        ) as response:
            assert response.status == 201
            body = await response.json()
    messages = await svc.item_messages(world.item)
    [(kind, row)] = [(k, m) for k, m in messages if m.id == body["message_id"]]
    assert kind is ConversationKind.EXTERNAL
    assert row.text == "Still broken <b>really</b>" and row.author is not None
    assert row.author.email == CARL


async def test_c2_agents_hear_when_a_customer_enters_and_leaves_the_chat(
    live: Service, svc: Service, world: World, base_url: str, http: ClientSession
) -> None:
    bob = await sign_in(http, base_url, BOB)
    in_chat = f"/people/in-chat?ids={world.carl}&ids={world.bob}"
    assert await call(http, base_url, "GET", in_chat, bob) == (200, [])
    async with http.ws_connect(f"{base_url}/api/v1/events", headers=bearer(bob)) as agent:
        await _next(agent, "ready")
        async with browser(base_url) as page:
            await _open_page(svc, page, base_url, world)
            async with page.ws_connect(f"{base_url}/chat/live", headers={"Origin": base_url}) as ws:
                await _next(ws, "ready")
                came = await _next(agent, "person")
                assert came["person"]["id"] == world.carl
                assert await call(http, base_url, "GET", in_chat, bob) == (200, [world.carl])
                carl = await customer_token(svc)
                assert (await call(http, base_url, "GET", in_chat, carl))[0] == 403
        went = await _next(agent, "person")
        assert went["person"]["id"] == world.carl
    assert await call(http, base_url, "GET", in_chat, bob) == (200, [])


async def test_c2_a_page_of_a_serve_process_that_died_lapses_and_agents_hear_it(
    live: Service,
    svc: Service,
    world: World,
    base_url: str,
    http: ClientSession,
    clock: ManualClock,
) -> None:
    """C2: a page whose serve process died never says it left; once its presence expires,
    the sweep (each serve runs it, any may) tells agents as a page closing does: one person
    event, however many sweeps run, and the customer is no longer in the chat."""
    bob = await sign_in(http, base_url, BOB)
    carl = await svc.authenticate(await customer_token(svc))
    async with http.ws_connect(f"{base_url}/api/v1/events", headers=bearer(bob)) as agent:
        await _next(agent, "ready")
        await svc.chat.join(carl)  # a page on a process that then died: no beat, no leave
        came = await _next(agent, "person")
        assert came["person"]["id"] == world.carl
        assert await svc.chat.sweep() == frozenset()  # alive: nothing lapses
        clock.advance(PRESENCE_TTL.total_seconds() + 1)
        assert await svc.customers_in_chat([world.carl]) == frozenset()
        # The server's own sweep may come first; either way the row lapses once.
        first, second = await svc.chat.sweep(), await svc.chat.sweep()
        assert first in ({world.carl}, frozenset()) and second == frozenset()
        went = await _next(agent, "person")
        assert went["person"]["id"] == world.carl
        external = (await svc.item(world.item)).external_conversation_id
        await svc.post(author=ANN, text="after the lapse", conversation_id=external)
        following = json.loads((await agent.receive(timeout=60)).data)
        assert following["type"] == "message"  # no second person event before it


async def test_c2_the_server_sweeps_lapsed_presence_on_its_own(
    live: Service,
    svc: Service,
    world: World,
    base_url: str,
    http: ClientSession,
    clock: ManualClock,
) -> None:
    """C2: nobody calls the sweep: the serve process does, every PRESENCE_BEAT (real time,
    waited on generously), and agents hear that the customer left."""
    bob = await sign_in(http, base_url, BOB)
    carl = await svc.authenticate(await customer_token(svc))
    async with http.ws_connect(f"{base_url}/api/v1/events", headers=bearer(bob)) as agent:
        await _next(agent, "ready")
        await svc.chat.join(carl)  # a page on a process that then died
        assert (await _next(agent, "person"))["person"]["id"] == world.carl
        clock.advance(PRESENCE_TTL.total_seconds() + 1)
        went = await _next(agent, "person")
        assert went["person"]["id"] == world.carl
        assert await svc.customers_in_chat([world.carl]) == frozenset()
