"""What a customer's chat session sees through the API (R2, T4, C1): only their own external
conversations. Never an internal message, its text, its id or its existence, a count that
includes one, nor another customer's conversation, whatever the ids and parameters: a
conversation they may not see answers as a missing one would."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api import ConversationKind, PersonKind, Service
from services.server.codec import plain
from services.server.endpoints import MAX_ID
from tests.integration.server.conftest import CARL, call, customer_token, last_position
from tests.support.world import World

MISSING = MAX_ID - 7  # an id no test workspace reaches


async def test_r2_a_customer_reads_only_their_own_external_conversations(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    item = await svc.item(world.item)
    internal, external = item.internal_conversation_id, item.external_conversation_id
    secret = await svc.post(
        author="ann@example.com",
        text="internal: refund approved",
        item_number=world.item,
        kind=ConversationKind.INTERNAL,
    )
    await svc.post(
        author="bob@example.com",
        text="we are on it",
        item_number=world.item,
        kind=ConversationKind.EXTERNAL,
    )
    await svc.add_person(email="dora@other.org", name="Dora", kind=PersonKind.CUSTOMER)
    other = await svc.create_item(title="Dora's own", followers=["dora@other.org"])
    await svc.post(
        author="dora@other.org",
        text="dora's words",
        item_number=other.number,
        kind=ConversationKind.EXTERNAL,
    )
    carl = await customer_token(svc)

    status, rows = await call(http, base_url, "GET", "/conversations?inbox=internal", carl)
    assert (status, rows) == (200, [])
    status, rows = await call(http, base_url, "GET", "/conversations?inbox=external", carl)
    assert [r["id"] for r in rows] == [external]
    query = f"/conversations?inbox=internal&ids={internal}&ids={other.external_conversation_id}"
    assert await call(http, base_url, "GET", query, carl) == (200, [])
    status, rows = await call(http, base_url, "GET", "/conversations/search?text=printer", carl)
    assert [r["id"] for r in rows] == [external]

    hidden = (internal, other.external_conversation_id)
    for path in ("/conversations/{}", "/conversations/{}/messages"):
        missing = await call(http, base_url, "GET", path.format(MISSING), carl)
        assert missing[0] == 404
        for cid in hidden:
            answer = await call(http, base_url, "GET", path.format(cid), carl)
            assert same_refusal(answer, missing, cid), (path, answer, missing)
    before = await last_position(svc)
    missing = await call(
        http, base_url, "POST", f"/conversations/{MISSING}/messages", carl, json={"text": "hi"}
    )
    for cid in hidden:
        answer = await call(
            http, base_url, "POST", f"/conversations/{cid}/messages", carl, json={"text": "hi"}
        )
        assert same_refusal(answer, missing, cid)
    status, changes = await call(
        http, base_url, "POST", "/seen", carl, json={"message_ids": [secret.message_id]}
    )
    assert (status, changes["conversations"], changes["counts"]) == (200, [], False)
    assert await last_position(svc) == before

    status, counts = await call(http, base_url, "GET", "/unseen-counts", carl)
    assert counts == {
        "total": 1,
        "internal": 0,
        "external": 1,
        "by_conversation": {str(external): 1},
    }
    status, page = await call(http, base_url, "GET", f"/conversations/{external}/messages", carl)
    assert [m["text"] for m in page] == ["we are on it"]
    status, info = await call(http, base_url, "GET", f"/conversations/{external}", carl)
    assert status == 200 and CARL in [m["email"] for m in info["members"]]


def same_refusal(answer: tuple[int, Any], missing: tuple[int, Any], cid: int) -> bool:
    """The refusal of a hidden conversation `cid` is the one a missing id gets."""
    text = json.dumps(answer[1]).replace(str(cid), str(MISSING))
    return answer[0] == 404 and text == json.dumps(missing[1])


# --- the property: random workspaces, random calls --------------------------------------------


@dataclass
class Secrets:
    """What the acting customer must never learn, and what they may see."""

    texts: set[str] = field(default_factory=set)
    message_ids: set[int] = field(default_factory=set)
    conversation_ids: set[int] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    allowed_conversations: set[int] = field(default_factory=set)


@st.composite
def workspaces(draw: st.DrawFn) -> dict[str, Any]:
    customers = draw(st.integers(1, 3))
    users = draw(st.integers(1, 2))
    items = draw(
        st.lists(
            st.tuples(
                st.sets(st.integers(0, customers - 1)),  # the customers who follow it
                st.lists(  # messages: internal?, author index (users first, then customers)
                    st.tuples(st.booleans(), st.integers(0, users + customers - 1)),
                    max_size=4,
                ),
            ),
            min_size=1,
            max_size=3,
        )
    )
    seen = draw(st.lists(st.tuples(st.integers(0, users + customers - 1), st.integers(0, 20))))
    return {"customers": customers, "users": users, "items": items, "seen": seen}


CALLS = st.lists(
    st.tuples(
        st.sampled_from(
            ["list", "ids", "search", "info", "messages", "post", "seen", "counts", "me"]
        ),
        st.integers(0, 40),  # which id of the pool
        st.sampled_from(["internal", "external", "direct", "", "1", "-5", "x" * 600]),
    ),
    min_size=1,
    max_size=8,
)


async def build(svc: Service, plan: dict[str, Any], run: int) -> tuple[str, Secrets, list[int]]:
    """The workspace of one example (new people and items beside earlier examples'), the
    acting customer's token, what they must not see, and a pool of ids to try."""
    users = [f"u{run}.{i}@team.example" for i in range(plan["users"])]
    customers = [f"c{run}.{i}@cust.example" for i in range(plan["customers"])]
    for i, email in enumerate(users):
        await svc.add_person(email=email, name=f"User {run} {i}")
    for i, email in enumerate(customers):
        await svc.add_person(email=email, name=f"Cust {run} {i}", kind=PersonKind.CUSTOMER)
    me = customers[0]
    people = users + customers
    message_ids: list[int] = []
    for n, (followers, posts) in enumerate(plan["items"]):
        item = await svc.create_item(
            title=f"Printer {run} {n}", followers=users + [customers[c] for c in followers]
        )
        for k, (internal, author) in enumerate(posts):
            who = people[author]
            if internal or (who in customers and customers.index(who) not in followers):
                who = users[author % len(users)]
            kind = ConversationKind.INTERNAL if internal else ConversationKind.EXTERNAL
            text = f"{'sec' if internal else 'ext'}-{run}-{n}-{k}-{kind.value}"
            posted = await svc.post(author=who, text=text, item_number=item.number, kind=kind)
            message_ids.append(posted.message_id)
    for person, index in plan["seen"]:
        found = await svc.person(people[person])
        await svc.mark_seen(person_id=found.id, message_ids=message_ids[index : index + 1])
    token = await customer_token(svc, me)
    return token, await secrets_of(svc, me), message_ids


async def secrets_of(svc: Service, me: str) -> Secrets:
    """From the whole database (every example's workspace so far)."""
    out = Secrets()
    mine = await svc.person(me)
    for item in await svc.items():
        follows = any(f.id == mine.id for f in item.followers)
        out.conversation_ids.add(item.internal_conversation_id)
        if follows:
            out.allowed_conversations.add(item.external_conversation_id)
        else:
            out.conversation_ids.add(item.external_conversation_id)
            out.emails.update(f.email for f in item.followers if f.kind is PersonKind.CUSTOMER)
        for kind, row in await svc.item_messages(item.number):
            if kind is ConversationKind.INTERNAL or not follows:
                out.texts.add(row.text)
                out.message_ids.add(row.id)
    out.emails -= {
        f.email
        for item in await svc.items()
        if item.external_conversation_id in out.allowed_conversations
        for f in item.followers
    }
    return out


def request_of(kind: str, some_id: int, text: str) -> tuple[str, str, Any]:
    return {
        "list": ("GET", f"/conversations?inbox={text or 'external'}", None),
        "ids": ("GET", f"/conversations?inbox={text or 'internal'}&ids={some_id}", None),
        "search": ("GET", f"/conversations/search?text={text or 'printer'}", None),
        "info": ("GET", f"/conversations/{some_id}", None),
        "messages": ("GET", f"/conversations/{some_id}/messages?before={some_id + 1}", None),
        "post": ("POST", f"/conversations/{some_id}/messages", {"text": "from the chat"}),
        "seen": ("POST", "/seen", {"message_ids": [some_id, some_id + 1]}),
        "counts": ("GET", "/unseen-counts", None),
        "me": ("GET", "/me", None),
    }[kind]


def check(kind: str, status: int, body: Any, secrets: Secrets) -> None:
    """One answer to the acting customer holds nothing they may not see."""
    text = json.dumps(body)
    assert status in (200, 201, 400, 404), (kind, status, body)  # 403 would tell it exists
    for secret in secrets.texts | secrets.emails:
        assert secret not in text, (kind, secret, body)
    if status >= 400:
        return
    conversations = {int(c) for c in re.findall(r'"conversation_id": (\d+)', text)}
    if kind in ("list", "ids", "search", "info"):
        conversations |= {row["id"] for row in (body if isinstance(body, list) else [body])}
    if kind == "messages":
        assert not {m["id"] for m in body} & secrets.message_ids, body
    if kind == "seen":
        conversations |= set(body["conversations"])
    if kind == "counts":
        assert body["internal"] == 0 and body["total"] == body["external"], body
        assert sum(body["by_conversation"].values()) == body["total"], body
        conversations |= {int(c) for c in body["by_conversation"]}
    assert conversations <= secrets.allowed_conversations, (kind, body)


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=workspaces(), calls=CALLS)
async def test_r2_t4_no_call_of_a_customer_reveals_anything_internal_or_another_customers(
    http: ClientSession, base_url: str, svc: Service, plan: dict[str, Any], calls: Any
) -> None:
    run = next(RUNS)
    token, secrets, message_ids = await build(svc, plan, run)
    known = secrets.conversation_ids | secrets.allowed_conversations | set(message_ids)
    pool = [*sorted(known), 0, MISSING]
    for kind, index, text in calls:
        method, path, body = request_of(kind, pool[index % len(pool)], text)
        status, answer = await call(http, base_url, method, path, token, json=body)
        check(kind, status, answer, secrets)


RUNS = itertools.count()


async def test_r2_a_customer_sees_no_agents_settings_quiet_hours_or_admin_flag(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    """R2, T4: a customer reading a conversation and its messages learns the agents' names and
    kinds, never their notification settings, quiet hours or that one administers the desk."""
    from datetime import UTC, datetime

    from services.domain.model import NotificationSettings

    quiet = NotificationSettings(
        sound=False, delay_s=600, dnd_until=datetime(2031, 1, 1, tzinfo=UTC)
    )
    await svc.set_notification_settings(person_id=world.ann, settings=quiet)
    await svc.post(
        author="ann@example.com",
        text="we are on it",
        item_number=world.item,
        kind=ConversationKind.EXTERNAL,
    )
    external = (await svc.item(world.item)).external_conversation_id
    carl = await customer_token(svc)
    answers = [
        await call(http, base_url, "GET", f"/conversations/{external}", carl),
        await call(http, base_url, "GET", f"/conversations/{external}/messages", carl),
    ]
    people = [
        p for status, body in answers for p in _people(body) if p["email"] == "ann@example.com"
    ]
    assert all(status == 200 for status, _ in answers) and people
    for person in people:
        assert person["is_admin"] is False
        assert person["settings"] == json.loads(json.dumps(plain(NotificationSettings())))


def _people(value: Any) -> list[dict[str, Any]]:
    """Every person object (a dict with an email and a kind) anywhere in an answer."""
    if isinstance(value, dict):
        found = [value] if {"email", "kind", "settings"} <= value.keys() else []
        return found + [p for v in value.values() for p in _people(v)]
    if isinstance(value, list):
        return [p for v in value for p in _people(v)]
    return []
