"""What a team replica needs from the server (T5, S2, R2), on SQLite and PostgreSQL: a post
carrying a client id is made once however often (and however concurrently) it is sent;
message events carry the client id and the recipients; the snapshot is what the agent may see,
at the event position it was read at."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiohttp import ClientSession

from services.api import Service
from services.server_client import ServerClient, decode, path
from services.team.snapshot import Snapshot
from tests.integration.server.conftest import ANN, BOB, PW, call, last_position, sign_in
from tests.integration.server.test_server_events import connect, live, until_message
from tests.support.world import World

__all__ = ["live"]  # the fixture, used here


async def _count_messages(svc: Service, client_id: str) -> int:
    rows = await svc.item_messages(1)
    return sum(1 for _kind, row in rows if row.text == f"once {client_id}")


async def test_t5_a_post_sent_twice_with_its_client_id_is_made_once(
    svc: Service, world: World, http: ClientSession, base_url: str
) -> None:
    """T5: the answer was lost, the desktop sends again: one message, the same answer."""
    token = await sign_in(http, base_url, ANN)
    item = await svc.item(world.item)
    client_id = str(uuid.uuid4())
    body = {"text": f"once {client_id}", "client_id": client_id}
    where = f"/conversations/{item.internal_conversation_id}/messages"
    first = await call(http, base_url, "POST", where, token, json=body)
    again = await call(http, base_url, "POST", where, token, json=body)
    assert first[0] == again[0] == 201, (first, again)
    assert first[1]["message_id"] == again[1]["message_id"]
    assert first[1]["recipients"] == again[1]["recipients"] == [world.bob]
    assert await _count_messages(svc, client_id) == 1
    # By item number too (the command line's way), the same id finds the same message.
    by_item = await call(
        http, base_url, "POST", "/items/1/messages", token, json={"kind": "internal", **body}
    )
    assert by_item[1]["message_id"] == first[1]["message_id"]


async def test_t5_racing_posts_with_one_client_id_make_one_message(
    svc: Service, world: World, http: ClientSession, base_url: str
) -> None:
    """T5: the same write sent on several connections at once (PostgreSQL: both transactions
    look, neither finds it, both insert; the unique client id decides): one message."""
    token = await sign_in(http, base_url, ANN)
    item = await svc.item(world.item)
    client_id = str(uuid.uuid4())
    body = {"text": f"once {client_id}", "client_id": client_id}
    where = f"/conversations/{item.internal_conversation_id}/messages"
    answers = await asyncio.gather(
        *(call(http, base_url, "POST", where, token, json=body) for _ in range(6))
    )
    assert {status for status, _ in answers} == {201}, answers
    assert len({answer["message_id"] for _, answer in answers}) == 1
    assert await _count_messages(svc, client_id) == 1


async def test_t5_another_authors_client_id_is_refused(
    svc: Service, world: World, http: ClientSession, base_url: str
) -> None:
    ann, bob = await sign_in(http, base_url, ANN), await sign_in(http, base_url, BOB)
    item = await svc.item(world.item)
    client_id = str(uuid.uuid4())
    where = f"/conversations/{item.internal_conversation_id}/messages"
    status, _ = await call(
        http, base_url, "POST", where, ann, json={"text": "mine", "client_id": client_id}
    )
    assert status == 201
    status, answer = await call(
        http, base_url, "POST", where, bob, json={"text": "his", "client_id": client_id}
    )
    assert status == 400, answer
    assert "client id" in answer["error"]["message"]
    status, answer = await call(
        http, base_url, "POST", where, bob, json={"text": "long", "client_id": "x" * 37}
    )
    assert status == 400, answer


async def test_t5_message_events_carry_the_client_id_and_the_recipients(
    live: Service, world: World, http: ClientSession, base_url: str
) -> None:
    ann, bob = await sign_in(http, base_url, ANN), await sign_in(http, base_url, BOB)
    ws = await connect(http, base_url, bob, after=await last_position(live))
    item = await live.item(world.item)
    client_id = str(uuid.uuid4())
    status, _ = await call(
        http,
        base_url,
        "POST",
        f"/conversations/{item.external_conversation_id}/messages",
        ann,
        json={"text": "for everyone", "client_id": client_id},
    )
    assert status == 201
    event = (await until_message(ws, "for everyone"))[-1]
    assert event["message"]["client_id"] == client_id
    assert sorted(event["message"]["recipients"]) == sorted([world.bob, world.carl])
    await ws.close()


async def test_t5_the_snapshot_is_what_the_agent_may_see_at_its_position(
    svc: Service, world: World, http: ClientSession, base_url: str
) -> None:
    """Everything a replica starts from, in one read: the direct conversation of two others
    is not the reader's (R2's rule of the event stream), seen times are there (S2)."""
    item = await svc.item(world.item)
    posted = await svc.post(
        author=BOB, text="hello Ann", conversation_id=item.internal_conversation_id
    )
    await svc.mark_seen(person_id=world.ann, message_ids=[posted.message_id])
    await svc.add_person(email="dora@example.com", name="Dora Agent")
    bob_dora = await svc.direct_conversation(a=BOB, b="dora@example.com")
    secret = await svc.post(author=BOB, text="between us", conversation_id=bob_dora)
    async with ServerClient(base_url) as client:
        await client.sign_in(email=ANN, password=PW, device="replica")
        snap: Snapshot = decode(Snapshot, await client.call("GET", path("sync", "snapshot")))
        assert snap.position == await last_position(svc)
        assert snap.person_id == world.ann
        assert {p.email for p in snap.people} >= {ANN, BOB, "carl@customer.org"}
        assert [i.number for i in snap.items] == [world.item]
        conversations = {c.id for c in snap.conversations}
        assert {item.internal_conversation_id, item.external_conversation_id} <= conversations
        assert bob_dora not in conversations
        assert secret.message_id not in {m.id for m in snap.messages}
        seen = [d for d in snap.deliveries if d.message_id == posted.message_id]
        assert [(d.recipient_id, d.seen_at is not None) for d in seen] == [(world.ann, True)]
        assert {(f.item_id, f.person_id) for f in snap.followers} >= {(item.id, world.ann)}
        assert snap.settings == (await svc.person(ANN)).settings  # the workspace delay too
        position = await client.call("GET", path("sync", "position"))
        assert position == {"position": snap.position}


@pytest.mark.parametrize("route", ["/sync/snapshot", "/sync/position"])
async def test_t5_the_sync_calls_are_in_the_openapi_document(
    svc: Service, http: ClientSession, base_url: str, route: str
) -> None:
    status, document = await call(http, base_url, "GET", "/openapi.json")
    assert status == 200
    assert route in document["paths"] or f"/api/v1{route}" in document["paths"]
