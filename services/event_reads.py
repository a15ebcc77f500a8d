"""The event stream's reads (T1): changes described once for every viewer, and catching up.

`describe` turns a batch of change-feed entries into `TypedEvent`s (services/event_views.py)
in one unit of work: the messages, people, conversations and items the batch names are read
with a handful of statements, whatever the batch's size, so a server with many streams open
reads each change once. `catch_up` reads the changes past a client's cursor a page at a time,
and says when the cursor is older than the feed keeps (the client must resync).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from services import items
from services.domain.model import ConversationKind, PersonKind
from services.event_views import (
    ConversationFacts,
    Payload,
    PersonFacts,
    TypedEvent,
    admins_only,
    control,
    conversation_event,
    follow_event,
    item_event,
    message_event,
    person_event,
    seen_event,
    session_event,
)
from services.events import changes_after
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
from services.store.prepared import Prepared
from services.views import ChangeEvent, ChangeKind, PersonInfo

__all__ = ["CatchUp", "catch_up", "conversation_facts", "describe"]

_CHUNK = 500  # ids per IN list, and changes described per unit of work

_CONVERSATIONS = Prepared[tuple[int, str, int | None, int | None]](
    select(Conversation.id, Conversation.kind, Conversation.item_id, Item.number)
    .outerjoin(Item, Item.id == Conversation.item_id)
    .where(Conversation.id.in_(bindparam("ids", expanding=True)))
)
_FOLLOWERS = Prepared[tuple[int, int, str]](
    select(Follower.item_id, Follower.person_id, Person.kind)
    .join(Person, Person.id == Follower.person_id)
    .where(Follower.item_id.in_(bindparam("ids", expanding=True)))
)
_MEMBERS = Prepared[tuple[int, int, str]](
    select(ConversationMember.conversation_id, ConversationMember.person_id, Person.kind)
    .join(Person, Person.id == ConversationMember.person_id)
    .where(ConversationMember.conversation_id.in_(bindparam("ids", expanding=True)))
)
_MESSAGES = Prepared[tuple[int, int, int | None, str, Any, str, Any, str | None]](
    select(
        Message.id,
        Message.conversation_id,
        Message.author_id,
        Message.text,
        Message.created_at,
        Message.source,
        Message.deleted_at,
        Message.client_id,
    ).where(Message.id.in_(bindparam("ids", expanding=True)))
)
_RECIPIENTS = Prepared[tuple[int, int]](
    select(Delivery.message_id, Delivery.recipient_id)
    .where(Delivery.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(Delivery.message_id, Delivery.recipient_id)
)
_PEOPLE = Prepared[tuple[int, str, str, str, bool]](
    select(Person.id, Person.name, Person.email, Person.kind, Person.is_admin).where(
        Person.id.in_(bindparam("ids", expanding=True))
    )
)
_SEEN = Prepared[tuple[int]](
    select(Delivery.message_id)
    .where(
        Delivery.recipient_id == bindparam("person_id"),
        Delivery.conversation_id == bindparam("conversation_id"),
        Delivery.seen_at == bindparam("at"),
    )
    .order_by(Delivery.message_id)
)
_ITEM_CONVERSATIONS = Prepared[tuple[int, int, int]](
    select(Item.id, Item.number, Conversation.id)
    .join(
        Conversation,
        (Conversation.item_id == Item.id) & (Conversation.kind == ConversationKind.EXTERNAL.value),
    )
    # An item's external conversation: what a customer who follows it reads.
    .where(Item.id.in_(bindparam("ids", expanding=True)))
)


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    found = sorted(set(ids))
    return [found[n : n + _CHUNK] for n in range(0, len(found), _CHUNK)]


def _rows(tx: Tx, statement: Prepared[Any], ids: Iterable[int]) -> list[Any]:
    return [row for chunk in _chunks(ids) for row in tx.run(statement, {"ids": chunk})]


@dataclass
class _Facts:
    """What a batch of changes names, read in a few statements."""

    conversations: dict[int, ConversationFacts]
    people: dict[int, PersonFacts]
    messages: dict[int, tuple[int, int, int | None, str, Any, str, Any, str | None]]
    items: dict[int, tuple[int, int]]  # item id -> (number, external conversation)
    recipients: dict[int, tuple[int, ...]]  # message id -> its deliveries' recipients


def _followers(tx: Tx, item_ids: Iterable[int]) -> dict[int, set[tuple[int, str]]]:
    found: dict[int, set[tuple[int, str]]] = {}
    for item_id, person_id, kind in _rows(tx, _FOLLOWERS, item_ids):
        found.setdefault(item_id, set()).add((person_id, kind))
    return found


def _conversations(tx: Tx, ids: Iterable[int]) -> dict[int, ConversationFacts]:
    rows = _rows(tx, _CONVERSATIONS, ids)
    followers = _followers(tx, {r[2] for r in rows if r[2] is not None})
    members: dict[int, set[tuple[int, str]]] = {}
    for conv_id, person_id, kind in _rows(tx, _MEMBERS, [r[0] for r in rows]):
        members.setdefault(conv_id, set()).add((person_id, kind))
    found = {}
    for conv_id, kind, item_id, number in rows:
        people = followers.get(item_id, set()) if item_id is not None else set()
        people = people | members.get(conv_id, set())
        found[conv_id] = ConversationFacts(
            id=conv_id,
            kind=ConversationKind(kind),
            item_number=number,
            people=frozenset(p for p, _ in people),
            customers=frozenset(p for p, k in people if k == PersonKind.CUSTOMER.value),
        )
    return found


def conversation_facts(tx: Tx, ids: Iterable[int]) -> dict[int, ConversationFacts]:
    """Who may see each of these conversations (for `event_views.visible`)."""
    return _conversations(tx, ids)


def _facts(tx: Tx, changes: Sequence[ChangeEvent]) -> _Facts:
    by_kind: dict[ChangeKind, list[ChangeEvent]] = {}
    for change in changes:
        by_kind.setdefault(change.kind, []).append(change)

    def subjects(*kinds: ChangeKind) -> set[int]:
        return {c.subject_id for k in kinds for c in by_kind.get(k, ()) if c.subject_id is not None}

    messages = {row[0]: row for row in _rows(tx, _MESSAGES, subjects(ChangeKind.MESSAGE))}
    conversation_ids = {
        c.conversation_id
        for k in (ChangeKind.MESSAGE, ChangeKind.SEEN, ChangeKind.EMAIL)
        for c in by_kind.get(k, ())
        if c.conversation_id is not None
    }
    people_ids = {row[2] for row in messages.values() if row[2] is not None} | {
        c.person_id
        for k in (ChangeKind.SEEN, ChangeKind.FOLLOW, ChangeKind.PERSON)
        for c in by_kind.get(k, ())
        if c.person_id is not None
    }
    people = {
        pid: PersonFacts(
            id=pid, name=name, email=email, kind=PersonKind(kind), is_admin=bool(admin)
        )
        for pid, name, email, kind, admin in _rows(tx, _PEOPLE, people_ids)
    }
    item_rows = _rows(tx, _ITEM_CONVERSATIONS, subjects(ChangeKind.ITEM, ChangeKind.FOLLOW))
    recipients: dict[int, list[int]] = {}
    for message_id, recipient_id in _rows(tx, _RECIPIENTS, messages):
        recipients.setdefault(message_id, []).append(recipient_id)
    return _Facts(
        recipients={m: tuple(r) for m, r in recipients.items()},
        conversations=_conversations(tx, conversation_ids),
        people=people,
        messages=messages,
        items={item_id: (number, external) for item_id, number, external in item_rows},
    )


def describe(tx: Tx, changes: Sequence[ChangeEvent]) -> list[TypedEvent]:
    """Each change as every kind of viewer may see it, in the order given."""
    described: list[TypedEvent] = []
    for start in range(0, len(changes), _CHUNK):
        chunk = changes[start : start + _CHUNK]
        facts = _facts(tx, chunk)
        described.extend(_one(tx, change, facts) for change in chunk)
    return described


def _one(tx: Tx, change: ChangeEvent, facts: _Facts) -> TypedEvent:
    position, kind = change.position, change.kind
    conversation = (
        facts.conversations.get(change.conversation_id)
        if change.conversation_id is not None
        else None
    )
    if kind is ChangeKind.MESSAGE and conversation is not None:
        row = facts.messages.get(change.subject_id) if change.subject_id is not None else None
        if row is None:  # written before changes named their message
            return conversation_event(position, kind, conversation, customers_too=True)
        message_id, _conv, author_id, text, created_at, source, deleted_at, client_id = row
        return message_event(
            position,
            conversation,
            message_id=message_id,
            author=facts.people.get(author_id) if author_id is not None else None,
            text=text,
            created_at=created_at,
            source=source,
            deleted=deleted_at is not None,
            client_id=client_id,
            recipients=facts.recipients.get(message_id, ()),
        )
    if kind is ChangeKind.SEEN and conversation is not None and change.person_id is not None:
        person = facts.people.get(change.person_id)
        if person is not None:
            seen = tx.run(
                _SEEN,
                {
                    "person_id": person.id,
                    "conversation_id": conversation.id,
                    "at": change.at,
                },
            )
            return seen_event(
                position,
                conversation,
                person=person,
                message_ids=[mid for (mid,) in seen],
                at=change.at,
            )
    if kind is ChangeKind.EMAIL and conversation is not None:
        return conversation_event(position, kind, conversation, customers_too=False)
    if kind is ChangeKind.ITEM and change.subject_id in facts.items:
        return _item(tx, position, change.subject_id)
    if kind is ChangeKind.FOLLOW and change.subject_id in facts.items:
        person = facts.people.get(change.person_id) if change.person_id is not None else None
        if person is not None:
            number, external = facts.items[change.subject_id]
            following = bool(
                tx.conn.execute(
                    select(Follower.item_id).where(
                        Follower.item_id == change.subject_id, Follower.person_id == person.id
                    )
                ).first()
            )
            return follow_event(
                position,
                person=person,
                item_number=number,
                external_conversation_id=external,
                following=following,
            )
    if kind is ChangeKind.PERSON and change.person_id in facts.people:
        return person_event(position, facts.people[change.person_id])
    if kind is ChangeKind.SESSION and change.person_id is not None:
        return session_event(position, person_id=change.person_id, session_id=change.subject_id)
    if kind in (ChangeKind.SETTINGS, ChangeKind.ITEM, ChangeKind.FOLLOW):
        # Users re-read these (the delay, an item list); nothing in them is a customer's.
        return control(position, kind, users_too=True)
    # The email log, automations, templates; and what no longer exists to be described.
    return admins_only(position, kind)


def _item(tx: Tx, position: int, item_id: int) -> TypedEvent:
    info = items.item_info(tx, item_id, default_delay_s=0)

    def person(p: PersonInfo | None) -> Payload | None:
        if p is None:
            return None
        return PersonFacts(
            id=p.id, name=p.name, email=p.email, kind=p.kind, is_admin=p.is_admin
        ).for_users()

    shown = {
        "id": info.id,
        "number": info.number,
        "title": info.title,
        "status": info.status,
        "internal_conversation_id": info.internal_conversation_id,
        "external_conversation_id": info.external_conversation_id,
        "followers": [person(p) for p in info.followers],
        "requester": person(info.requester),
        "assignee": person(info.assignee),
        "created_at": info.created_at.isoformat(),
    }
    return item_event(
        position,
        item=shown,
        number=info.number,
        title=info.title,
        status=info.status,
        external_conversation_id=info.external_conversation_id,
        customers=frozenset(p.id for p in info.followers if p.kind is PersonKind.CUSTOMER),
    )


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A page of what a client missed: its events, the position it reaches."""

    events: list[TypedEvent]
    reached: int


def catch_up(tx: Tx, *, after: int, until: int) -> CatchUp:
    """The next page of changes in (after, until], described; `reached` is `until` once
    nothing is left."""
    page = [c for c in changes_after(tx, after) if c.position <= until]
    if not page:
        return CatchUp(events=[], reached=until)
    return CatchUp(events=describe(tx, page), reached=page[-1].position)
