"""The team replica's units of work (T5): load a snapshot, apply the server's events, keep the
event cursor. The replica is an ordinary Deskbell workspace whose rows carry the server's ids,
so every read of the window works unchanged; each change applied is recorded in the replica's
own change feed (`record_change`), which wakes the window as a local write would.

A message this desktop posted has a provisional row (an id from `PROVISIONAL_BASE` up, which
no server id reaches: server ids are PostgreSQL INTEGERs) until the server's copy arrives with
the same `client_id` and takes its place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.sqlite import insert

from services.domain.model import ConversationKind, DeliveryState, NotificationSettings
from services.server.codec import from_plain
from services.store import queries
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import (
    Conversation,
    ConversationMember,
    Counter,
    Delivery,
    Follower,
    Item,
    Message,
    Person,
)
from services.team.queue import FOLLOW, SEEN, SETTINGS, queued
from services.team.snapshot import Snapshot
from services.views import ChangeKind

__all__ = [
    "CURSOR",
    "PROVISIONAL_BASE",
    "Applied",
    "apply_events",
    "cursor",
    "load_snapshot",
    "set_own_settings",
    "touch",
]

PROVISIONAL_BASE: Final = 2**31  # past every server id (INTEGER on PostgreSQL)
CURSOR: Final = "team_position"  # the counters row: the last event position applied

Event = Mapping[str, Any]


def cursor(tx: Tx) -> int | None:
    """The last event position applied, None before the first snapshot."""
    found = tx.conn.execute(select(Counter.value).where(Counter.name == CURSOR)).first()
    return None if found is None else int(found[0])


def _set_cursor(tx: Tx, position: int) -> None:
    stmt = insert(Counter).values(name=CURSOR, value=position)
    tx.conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": position}))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- rows by server id -------------------------------------------------------------------------


def _person(tx: Tx, person: Mapping[str, Any] | None, at: datetime) -> None:
    if person is None or "email" not in person:
        return
    values = {
        "name": person["name"],
        "email": person["email"],
        "kind": person["kind"],
        "is_admin": bool(person.get("is_admin", False)),
    }
    stmt = insert(Person).values(id=person["id"], created_at=at, **values)
    tx.conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))


def _upsert(tx: Tx, model: Any, values: Mapping[str, Any], *, keep: Iterable[str] = ()) -> None:
    """Insert the row, or update it by id (but not the columns in `keep`)."""
    stmt = insert(model).values(**values)
    changed = {k: v for k, v in values.items() if k != "id" and k not in keep}
    tx.conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changed))


def _message(tx: Tx, values: Mapping[str, Any]) -> None:
    """The server's message; a provisional copy with its client id gives way to it."""
    client_id = values.get("client_id")
    if client_id is not None:
        tx.conn.execute(
            delete(Message).where(Message.client_id == client_id, Message.id != values["id"])
        )
    _upsert(tx, Message, values)


def touch(tx: Tx, conversation_id: int) -> None:
    """A conversation's last message: the newest one not deleted, a provisional one included
    (ids grow with posting; by id, the read walks `ix_messages_conversation_id_id` backwards
    and stops at the first row, however long the conversation)."""
    last = tx.conn.execute(
        select(Message.id, Message.created_at)
        .where(Message.conversation_id == conversation_id, Message.deleted_at.is_(None))
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    tx.conn.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            last_message_id=last[0] if last else None,
            last_message_at=last[1] if last else None,
        )
    )


# --- the snapshot ------------------------------------------------------------------------------


def load_snapshot(tx: Tx, snap: Snapshot, *, now: datetime) -> None:
    """Make the replica what the server said at `snap.position`, keeping the provisional
    messages the server has not seen yet; the cursor moves there."""
    for p in snap.people:
        _person(
            tx,
            {"id": p.id, "name": p.name, "email": p.email, "kind": p.kind, "is_admin": p.is_admin},
            now,
        )
    _own_settings(tx, snap.person_id, snap.settings)
    for i in snap.items:
        _upsert(
            tx,
            Item,
            {
                "id": i.id,
                "number": i.number,
                "title": i.title,
                "status": i.status,
                "requester_id": i.requester_id,
                "assignee_id": i.assignee_id,
                "created_at": i.created_at,
                "updated_at": i.updated_at,
            },
        )
    for c in snap.conversations:
        _upsert(
            tx,
            Conversation,
            {
                "id": c.id,
                "kind": c.kind.value,
                "item_id": c.item_id,
                "direct_key": c.direct_key,
                "created_at": c.created_at,
                "last_message_at": c.last_message_at,
                "last_message_id": c.last_message_id,
            },
        )
    server_ids = {m.id for m in snap.messages}
    tx.conn.execute(delete(Delivery))
    stale = select(Message.id).where(Message.id < PROVISIONAL_BASE, Message.id.not_in(server_ids))
    tx.conn.execute(delete(Message).where(Message.id.in_(stale)))
    for m in snap.messages:
        _message(
            tx,
            {
                "id": m.id,
                "conversation_id": m.conversation_id,
                "author_id": m.author_id,
                "text": m.text,
                "created_at": m.created_at,
                "source": m.source,
                "deleted_at": m.deleted_at,
                "client_id": m.client_id,
            },
        )
    if snap.deliveries:
        tx.conn.execute(
            insert(Delivery),
            [
                {
                    "message_id": d.message_id,
                    "recipient_id": d.recipient_id,
                    "conversation_id": d.conversation_id,
                    "created_at": d.created_at,
                    "state": d.state,
                    "seen_at": d.seen_at,
                    "due_at": None,  # the replica sends no email: nothing falls due here
                }
                for d in snap.deliveries
            ],
        )
    tx.conn.execute(delete(Follower))
    if snap.followers:
        tx.conn.execute(
            insert(Follower),
            [{"item_id": f.item_id, "person_id": f.person_id} for f in snap.followers],
        )
    tx.conn.execute(delete(ConversationMember))
    if snap.members:
        tx.conn.execute(
            insert(ConversationMember),
            [
                {"conversation_id": m.conversation_id, "person_id": m.person_id}
                for m in snap.members
            ],
        )
    _reapply_queued(tx, snap.person_id)
    for conversation_id in _with_provisional(tx):
        touch(tx, conversation_id)
    _set_cursor(tx, snap.position)
    # Everything may have changed: the window re-reads people, items, settings and counts.
    for kind in (ChangeKind.PERSON, ChangeKind.ITEM, ChangeKind.SETTINGS):
        record_change(tx, kind=kind, at=now)
    for c in snap.conversations:
        record_change(tx, kind=ChangeKind.MESSAGE, at=now, conversation_id=c.id)


_SEEN_STATE = case(
    (Delivery.state == DeliveryState.PENDING.value, DeliveryState.SEEN.value),
    else_=Delivery.state,
)


def _reapply_queued(tx: Tx, person_id: int) -> None:
    """What this desktop did that the server has not had yet stays done in the replica."""
    for write, at in queued(tx, SEEN):
        tx.conn.execute(
            update(Delivery)
            .where(
                Delivery.recipient_id == person_id,
                Delivery.message_id.in_(write.payload["message_ids"]),
                Delivery.seen_at.is_(None),
            )
            .values(seen_at=at, state=_SEEN_STATE)
        )
    for write, _at in queued(tx, FOLLOW):
        item = select(Item.id).where(Item.number == write.payload["number"]).scalar_subquery()
        person = select(Person.id).where(Person.email == write.payload["email"]).scalar_subquery()
        if write.payload["on"]:
            stmt = insert(Follower).from_select(["item_id", "person_id"], select(item, person))
            tx.conn.execute(stmt.on_conflict_do_nothing())
        else:
            tx.conn.execute(
                delete(Follower).where(Follower.item_id == item, Follower.person_id == person)
            )
    settings = queued(tx, SETTINGS)
    if settings:
        latest = settings[-1][0].payload["settings"]
        _own_settings(tx, person_id, from_plain(NotificationSettings, latest))


def _with_provisional(tx: Tx) -> list[int]:
    rows = tx.conn.execute(
        select(Message.conversation_id).where(Message.id >= PROVISIONAL_BASE).distinct()
    )
    return [cid for (cid,) in rows]


def _own_settings(tx: Tx, person_id: int, settings: NotificationSettings) -> None:
    tx.conn.execute(
        update(Person)
        .where(Person.id == person_id)
        .values(
            notify_in_app=settings.in_app,
            notify_email=settings.email,
            notify_sound=settings.sound,
            delay_s=queries.stored_delay(settings.delay_s),
            dnd_until=settings.dnd_until,
            dnd_weekly=[list(w) for w in settings.dnd_weekly],
        )
    )


def set_own_settings(
    tx: Tx, *, person_id: int, settings: NotificationSettings, now: datetime
) -> None:
    """The person's settings as the server has them (changed on another desktop, say)."""
    _own_settings(tx, person_id, settings)
    record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=person_id)


# --- events ------------------------------------------------------------------------------------


class Applied:
    """What applying a batch found that the caller acts on, and what the batch knows (the
    people and conversations in the replica; the conversations to re-touch at its end), so
    an event costs the statements that write it and no more (a catch-up applies thousands)."""

    def __init__(self, tx: Tx) -> None:
        self.me_changed = False  # the person's own row changed: re-read their settings
        self.people: set[int] = set(tx.conn.execute(select(Person.id)).scalars())
        self.conversations: set[int] = set(tx.conn.execute(select(Conversation.id)).scalars())
        self.touched: set[int] = set()

    def person(self, tx: Tx, person: Mapping[str, Any] | None, at: datetime) -> None:
        """Upsert `person` (as an event shows them)."""
        if person is not None and "email" in person:
            _person(tx, person, at)
            self.people.add(person["id"])


def apply_events(tx: Tx, events: Sequence[Event], *, person_id: int, now: datetime) -> Applied:
    """Apply the server's events in order; the cursor moves past the last one."""
    applied = Applied(tx)
    last = None
    for event in events:
        _apply(tx, event, now=now, person_id=person_id, applied=applied)
        last = event.get("position", last)
    for conversation_id in sorted(applied.touched):
        touch(tx, conversation_id)
    if isinstance(last, int):
        _set_cursor(tx, last)
    return applied


def _apply(tx: Tx, event: Event, *, now: datetime, person_id: int, applied: Applied) -> None:
    kind = event.get("type")
    if kind == ChangeKind.MESSAGE.value:
        if event.get("action") == "posted":
            _posted(tx, event, now=now, applied=applied)
        elif event.get("action") == "deleted":
            _deleted(tx, event, now=now, applied=applied)
    elif kind == ChangeKind.SEEN.value:
        _seen(tx, event)
    elif kind == ChangeKind.ITEM.value and isinstance(event.get("item"), Mapping):
        _item(tx, event["item"], now=now, applied=applied)
    elif kind == ChangeKind.FOLLOW.value:
        _follow(tx, event, now=now, applied=applied)
    elif kind == ChangeKind.PERSON.value and isinstance(event.get("person"), Mapping):
        applied.person(tx, event["person"], now)
        record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=event["person"]["id"])
        if event["person"]["id"] == person_id:
            applied.me_changed = True


def _posted(tx: Tx, event: Event, *, now: datetime, applied: Applied) -> None:
    m = event["message"]
    author = m.get("author")
    author_id = author["id"] if author else None
    if author_id is not None and author_id not in applied.people:
        applied.person(tx, author, now)
    conversation_id = m["conversation_id"]
    recipients = [r for r in m.get("recipients", ()) if r in applied.people]
    if conversation_id not in applied.conversations:
        if not _conversation(tx, event, author_id=author_id, recipients=recipients, now=now):
            return
        applied.conversations.add(conversation_id)
    created = _time(m["created_at"])
    _message(
        tx,
        {
            "id": m["id"],
            "conversation_id": conversation_id,
            "author_id": author_id,
            "text": m["text"],
            "created_at": created,
            "source": m.get("source", "person"),
            "deleted_at": None,
            "client_id": m.get("client_id"),
        },
    )
    if recipients:
        tx.conn.execute(
            insert(Delivery).on_conflict_do_nothing(),
            [
                {
                    "message_id": m["id"],
                    "recipient_id": r,
                    "conversation_id": conversation_id,
                    "created_at": created,
                    "due_at": None,
                }
                for r in recipients
            ],
        )
    applied.touched.add(conversation_id)
    record_change(
        tx,
        kind=ChangeKind.MESSAGE,
        at=now,
        conversation_id=conversation_id,
        subject_id=m["id"],
    )


def _conversation(
    tx: Tx, event: Event, *, author_id: int | None, recipients: list[int], now: datetime
) -> bool:
    """Create the event's conversation, missing from the replica: a direct one from the
    message's two people; False for any other (an item's come with its item event)."""
    conversation_id = event["conversation_id"]
    kind = ConversationKind(event["conversation_kind"])
    if kind is not ConversationKind.DIRECT:
        return False
    people = sorted({*recipients, *([author_id] if author_id is not None else [])})
    tx.conn.execute(
        insert(Conversation).values(
            id=conversation_id,
            kind=kind.value,
            direct_key=":".join(str(p) for p in people) if len(people) == 2 else None,
            created_at=now,
        )
    )
    if people:
        tx.conn.execute(
            insert(ConversationMember).on_conflict_do_nothing(),
            [{"conversation_id": conversation_id, "person_id": p} for p in people],
        )
    return True


def _deleted(tx: Tx, event: Event, *, now: datetime, applied: Applied) -> None:
    message_id = event["message_id"]
    tx.conn.execute(
        update(Message)
        .where(Message.id == message_id, Message.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    # It stops counting as unseen (N3), as on the server.
    tx.conn.execute(
        update(Delivery)
        .where(Delivery.message_id == message_id)
        .values(seen_at=func.coalesce(Delivery.seen_at, now))
    )
    applied.touched.add(event["conversation_id"])
    record_change(
        tx,
        kind=ChangeKind.MESSAGE,
        at=now,
        conversation_id=event["conversation_id"],
        subject_id=message_id,
    )


def _seen(tx: Tx, event: Event) -> None:
    """S4: seen on any desktop of the person (or anywhere): the server's time is the one."""
    person = event["person"]
    at = _time(event["at"]) if event.get("at") else None
    ids = [int(i) for i in event.get("message_ids", ())]
    if at is None or not ids:
        return
    tx.conn.execute(
        update(Delivery)
        .where(Delivery.recipient_id == person["id"], Delivery.message_id.in_(ids))
        .values(
            seen_at=at,
            state=_SEEN_STATE,
        )
    )
    record_change(
        tx,
        kind=ChangeKind.SEEN,
        at=at,
        conversation_id=event["conversation_id"],
        person_id=person["id"],
    )


def _item(tx: Tx, item: Mapping[str, Any], *, now: datetime, applied: Applied) -> None:
    created = _time(item["created_at"])
    people = [*item.get("followers", ()), item.get("requester"), item.get("assignee")]
    for person in people:
        applied.person(tx, person, now)
    requester, assignee = item.get("requester"), item.get("assignee")
    _upsert(
        tx,
        Item,
        {
            "id": item["id"],
            "number": item["number"],
            "title": item["title"],
            "status": item["status"],
            "requester_id": requester["id"] if requester else None,
            "assignee_id": assignee["id"] if assignee else None,
            "created_at": created,
            "updated_at": now,
        },
        keep=("created_at",),
    )
    for key, kind in (
        ("internal_conversation_id", ConversationKind.INTERNAL),
        ("external_conversation_id", ConversationKind.EXTERNAL),
    ):
        stmt = insert(Conversation).values(
            id=item[key], kind=kind.value, item_id=item["id"], created_at=created
        )
        tx.conn.execute(stmt.on_conflict_do_nothing())
        applied.conversations.add(item[key])
    tx.conn.execute(delete(Follower).where(Follower.item_id == item["id"]))
    followers = {p["id"] for p in item.get("followers", ()) if p is not None}
    if followers:
        tx.conn.execute(
            insert(Follower), [{"item_id": item["id"], "person_id": p} for p in followers]
        )
    record_change(
        tx,
        kind=ChangeKind.ITEM,
        at=now,
        conversation_id=item["internal_conversation_id"],
        subject_id=item["id"],
    )


def _follow(tx: Tx, event: Event, *, now: datetime, applied: Applied) -> None:
    person = event["person"]
    applied.person(tx, person, now)
    found = tx.conn.execute(select(Item.id).where(Item.number == event["item_number"])).first()
    if found is None:
        return
    item_id = found[0]
    if event.get("following"):
        tx.conn.execute(
            insert(Follower)
            .values(item_id=item_id, person_id=person["id"])
            .on_conflict_do_nothing()
        )
    else:
        tx.conn.execute(
            delete(Follower).where(Follower.item_id == item_id, Follower.person_id == person["id"])
        )
    record_change(tx, kind=ChangeKind.FOLLOW, at=now, person_id=person["id"], subject_id=item_id)
