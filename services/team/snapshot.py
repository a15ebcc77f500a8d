"""What a team replica starts from (T5): everything a user may see, read in one transaction,
with the event-stream position it was read at.

`read_snapshot` runs on the server (`GET /api/v1/sync/snapshot`); a replica loads the answer
(services/team/replica.py) and follows the event stream from `position`: nothing in between
is missed or applied twice. Who sees which conversation is decided by the event stream's own
rule (`event_views.visible`), so the snapshot and the events never disagree (R2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select

from services.accounts import SignedIn
from services.domain.model import ConversationKind, NotificationSettings, PersonKind
from services.event_reads import conversation_facts
from services.event_views import conversation_event, visible
from services.events import kept_window
from services.store import queries
from services.store.database import Tx
from services.store.models import (
    Conversation,
    ConversationMember,
    Delivery,
    Follower,
    Item,
    Message,
    Person,
)
from services.views import ChangeKind

__all__ = [
    "SnapConversation",
    "SnapDelivery",
    "SnapFollower",
    "SnapItem",
    "SnapMember",
    "SnapMessage",
    "SnapPerson",
    "Snapshot",
    "read_snapshot",
]


@dataclass(frozen=True, slots=True)
class SnapPerson:
    id: int
    email: str
    name: str
    kind: PersonKind
    is_admin: bool


@dataclass(frozen=True, slots=True)
class SnapItem:
    id: int
    number: int
    title: str
    status: str
    requester_id: int | None
    assignee_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SnapFollower:
    item_id: int
    person_id: int


@dataclass(frozen=True, slots=True)
class SnapConversation:
    id: int
    kind: ConversationKind
    item_id: int | None
    direct_key: str | None
    created_at: datetime
    last_message_at: datetime | None
    last_message_id: int | None


@dataclass(frozen=True, slots=True)
class SnapMember:
    conversation_id: int
    person_id: int


@dataclass(frozen=True, slots=True)
class SnapMessage:
    id: int
    conversation_id: int
    author_id: int | None
    text: str
    created_at: datetime
    source: str
    deleted_at: datetime | None
    client_id: str | None


@dataclass(frozen=True, slots=True)
class SnapDelivery:
    message_id: int
    recipient_id: int
    conversation_id: int
    created_at: datetime
    state: str
    seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything `person_id` may see, as of event position `position`."""

    position: int
    person_id: int
    settings: NotificationSettings  # the person's own (R5, N6, M7)
    people: tuple[SnapPerson, ...]
    items: tuple[SnapItem, ...]
    followers: tuple[SnapFollower, ...]
    conversations: tuple[SnapConversation, ...]
    members: tuple[SnapMember, ...]
    messages: tuple[SnapMessage, ...]
    deliveries: tuple[SnapDelivery, ...]


_REPEATABLE: Final = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"


def _all(tx: Tx, *columns: Any) -> list[Any]:
    return list(tx.conn.execute(select(*columns)).all())


def read_snapshot(tx: Tx, who: SignedIn, *, default_delay_s: int) -> Snapshot:
    """What `who` may see now, and the position it is current at: one transaction, one
    consistent view (PostgreSQL's reads are per statement unless asked otherwise; SQLite's
    read transaction is one snapshot already). `default_delay_s`: the workspace's delay, for
    the person's settings when they keep the default."""
    if tx.conn.dialect.name == "postgresql":
        tx.conn.exec_driver_sql(_REPEATABLE)  # before any other statement of the transaction
    _oldest, position = kept_window(tx)
    me = queries.person_by_id(tx, who.person_id, default_delay_s=default_delay_s)
    facts = conversation_facts(tx, [cid for (cid,) in _all(tx, Conversation.id)])
    seen = {
        cid
        for cid, fact in facts.items()
        # The stream's own rule: this person sees what they would see as an event.
        if visible(conversation_event(0, ChangeKind.MESSAGE, fact, customers_too=True), who)
    }
    conversations = tuple(
        SnapConversation(cid, ConversationKind(kind), item, key, created, last_at, last_id)
        for cid, kind, item, key, created, last_at, last_id in _all(
            tx,
            Conversation.id,
            Conversation.kind,
            Conversation.item_id,
            Conversation.direct_key,
            Conversation.created_at,
            Conversation.last_message_at,
            Conversation.last_message_id,
        )
        if cid in seen
    )
    messages = tuple(
        SnapMessage(*row)
        for row in _all(
            tx,
            Message.id,
            Message.conversation_id,
            Message.author_id,
            Message.text,
            Message.created_at,
            Message.source,
            Message.deleted_at,
            Message.client_id,
        )
        if row[1] in seen
    )
    return Snapshot(
        position=position,
        person_id=me.id,
        settings=me.settings,
        people=tuple(
            SnapPerson(pid, email, name, PersonKind(kind), bool(admin))
            for pid, email, name, kind, admin in _all(
                tx, Person.id, Person.email, Person.name, Person.kind, Person.is_admin
            )
        ),
        items=tuple(
            SnapItem(*row)
            for row in _all(
                tx,
                Item.id,
                Item.number,
                Item.title,
                Item.status,
                Item.requester_id,
                Item.assignee_id,
                Item.created_at,
                Item.updated_at,
            )
        ),
        followers=tuple(
            SnapFollower(*row) for row in _all(tx, Follower.item_id, Follower.person_id)
        ),
        conversations=conversations,
        members=tuple(
            SnapMember(*row)
            for row in _all(tx, ConversationMember.conversation_id, ConversationMember.person_id)
            if row[0] in seen
        ),
        messages=messages,
        deliveries=tuple(
            SnapDelivery(*row)
            for row in _all(
                tx,
                Delivery.message_id,
                Delivery.recipient_id,
                Delivery.conversation_id,
                Delivery.created_at,
                Delivery.state,
                Delivery.seen_at,
            )
            if row[2] in seen
        ),
    )
