"""What each signed-in viewer may see of a change (T1, R2): typed events, pure.

A change is described once, for everyone (services/event_reads.py reads what it is about),
as a `TypedEvent`: the payload a user sees, the one an administrator sees, the one a customer
sees, and who among them may see it at all. `visible(event, viewer)` picks one for a viewer
with no I/O, so a server with many streams open filters each change per stream in a few
comparisons, and streams that see the same payload share one encoding of it.

R2 is decided here, in one place: a customer sees a change only when it is about one of the
external conversations they follow (or about themselves), and then only its customer
payload, which never names an internal conversation, counts, emails or other people's
addresses. Every payload is JSON-ready: text, numbers, booleans, None, lists and dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from services.domain.model import ConversationKind, PersonKind
from services.views import ChangeKind

__all__ = [
    "ConversationFacts",
    "Payload",
    "PersonFacts",
    "TypedEvent",
    "Viewer",
    "admins_only",
    "control",
    "conversation_event",
    "follow_event",
    "iso",
    "item_event",
    "message_event",
    "person_event",
    "seen_event",
    "session_event",
    "visible",
]

Payload = Mapping[str, object]
NOBODY: Final[frozenset[int]] = frozenset()


class Viewer(Protocol):
    """Who watches a stream: a `SignedIn`, or anything with these three fields."""

    @property
    def person_id(self) -> int: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def customer(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class TypedEvent:
    """One change as every kind of viewer may see it. `users`/`admins`/`customer`: the
    payload for an agent, an administrator, a customer among `customers` (None: they see
    nothing). `members`: when set, only these persons see it at all (a direct conversation).
    `about`/`own`: the person the change is about sees `own` whatever else applies."""

    position: int
    kind: ChangeKind
    users: Payload | None = None
    admins: Payload | None = None
    customer: Payload | None = None
    customers: frozenset[int] = NOBODY
    members: frozenset[int] | None = None
    about: int | None = None
    own: Payload | None = None
    subject_id: int | None = None  # the session that ended (SESSION)


def visible(event: TypedEvent, viewer: Viewer) -> Payload | None:
    """What `viewer` sees of `event`, or None. The same object for every viewer who sees the
    same thing (the server encodes it once)."""
    if event.own is not None and viewer.person_id == event.about:
        return event.own
    if event.members is not None and viewer.person_id not in event.members:
        return None
    if viewer.customer:
        return event.customer if viewer.person_id in event.customers else None
    return event.admins if viewer.is_admin else event.users


# --- describing changes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonFacts:
    id: int
    name: str
    email: str
    kind: PersonKind
    is_admin: bool = False

    def for_users(self) -> Payload:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "kind": self.kind.value,
            "is_admin": self.is_admin,
        }

    def for_customers(self) -> Payload:
        # Another person's address is not a customer's to learn (R2: no other customer's
        # data); a name is what the conversation shows, and the kind whether it is one of the
        # team or a customer (the chat page shows it, as it does for what it renders itself).
        return {"id": self.id, "name": self.name, "kind": self.kind.value}


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """Who may see a conversation: its kind, its item (if any) and the persons in it
    (an item's followers, a direct conversation's two members)."""

    id: int
    kind: ConversationKind
    item_number: int | None
    people: frozenset[int]
    customers: frozenset[int]  # the customers among `people`

    def audience(self) -> tuple[frozenset[int], frozenset[int] | None]:
        """(customers who may see it, members-only restriction)."""
        if self.kind is ConversationKind.EXTERNAL:
            return self.customers, None
        if self.kind is ConversationKind.DIRECT:
            return NOBODY, self.people
        return NOBODY, None

    def fields(self) -> dict[str, object]:
        return {
            "conversation_id": self.id,
            "conversation_kind": self.kind.value,
            "item_number": self.item_number,
        }


def iso(at: datetime) -> str:
    return at.isoformat()


def _head(position: int, kind: ChangeKind) -> dict[str, object]:
    return {"type": kind.value, "position": position}


def _in_conversation(
    position: int,
    kind: ChangeKind,
    conversation: ConversationFacts,
    users: Payload,
    customer: Payload | None,
) -> TypedEvent:
    customers, members = conversation.audience()
    return TypedEvent(
        position=position,
        kind=kind,
        users=users,
        admins=users,
        customer=customer if customers else None,
        customers=customers,
        members=members,
    )


def message_event(
    position: int,
    conversation: ConversationFacts,
    *,
    message_id: int,
    author: PersonFacts | None,
    text: str,
    created_at: datetime,
    source: str,
    deleted: bool,
    client_id: str | None = None,
    recipients: tuple[int, ...] = (),
) -> TypedEvent:
    """A message posted (with what the conversation shows of it) or deleted. Users also get
    its recipients (a team replica builds its deliveries from them); everyone who sees it its
    `client_id`, the id its writer gave it (T5: the writer replaces its provisional copy)."""
    kind = ChangeKind.MESSAGE
    base = {**_head(position, kind), **conversation.fields()}
    if deleted:
        gone = {**base, "action": "deleted", "message_id": message_id}
        return _in_conversation(position, kind, conversation, gone, gone)

    def shown(person: Payload | None, **extra: object) -> Payload:
        return {
            **base,
            "action": "posted",
            "message": {
                "id": message_id,
                "conversation_id": conversation.id,
                "item_number": conversation.item_number,
                "author": person,
                "text": text,
                "created_at": iso(created_at),
                "source": source,
                "client_id": client_id,
                **extra,
            },
        }

    return _in_conversation(
        position,
        kind,
        conversation,
        shown(author.for_users() if author else None, recipients=list(recipients)),
        shown(author.for_customers() if author else None),
    )


def seen_event(
    position: int,
    conversation: ConversationFacts,
    *,
    person: PersonFacts,
    message_ids: list[int],
    at: datetime | None,
) -> TypedEvent:
    """S2, S4: a person saw these messages of a conversation (on any device)."""
    kind = ChangeKind.SEEN
    base = {
        **_head(position, kind),
        **conversation.fields(),
        "message_ids": message_ids,
        "at": iso(at) if at else None,
    }
    return _in_conversation(
        position,
        kind,
        conversation,
        {**base, "person": person.for_users()},
        {**base, "person": person.for_customers()},
    )


def conversation_event(
    position: int, kind: ChangeKind, conversation: ConversationFacts, *, customers_too: bool
) -> TypedEvent:
    """Something of a conversation changed that the client re-reads (an email's status under
    a message: users only)."""
    payload = {**_head(position, kind), **conversation.fields()}
    return _in_conversation(
        position, kind, conversation, payload, payload if customers_too else None
    )


def item_event(
    position: int,
    *,
    item: Payload,
    number: int,
    title: str,
    status: str,
    external_conversation_id: int,
    customers: frozenset[int],
) -> TypedEvent:
    """An item created, or its status or assignee changed: the item as users read it; a
    customer who follows it sees its number, title, status and its external conversation."""
    kind = ChangeKind.ITEM
    return TypedEvent(
        position=position,
        kind=kind,
        users={**_head(position, kind), "item": item},
        admins={**_head(position, kind), "item": item},
        customer={
            **_head(position, kind),
            "item": {
                "number": number,
                "title": title,
                "status": status,
                "external_conversation_id": external_conversation_id,
            },
        },
        customers=customers,
    )


def follow_event(
    position: int,
    *,
    person: PersonFacts,
    item_number: int,
    external_conversation_id: int,
    following: bool,
) -> TypedEvent:
    """Someone started or stopped following an item. A customer hears only of their own
    follows (they gain or lose an external conversation)."""
    kind = ChangeKind.FOLLOW
    fields = {
        **_head(position, kind),
        "item_number": item_number,
        "external_conversation_id": external_conversation_id,
        "following": following,
    }
    users = {**fields, "person": person.for_users()}
    return TypedEvent(
        position=position,
        kind=kind,
        users=users,
        admins=users,
        about=person.id,
        own={**fields, "person": person.for_customers()}
        if person.kind is PersonKind.CUSTOMER
        else users,
    )


def person_event(position: int, person: PersonFacts) -> TypedEvent:
    """A person added or changed: users see who they are; a customer only themselves."""
    kind = ChangeKind.PERSON
    users = {**_head(position, kind), "person": person.for_users()}
    return TypedEvent(
        position=position, kind=kind, users=users, admins=users, about=person.id, own=users
    )


def session_event(position: int, *, person_id: int, session_id: int | None) -> TypedEvent:
    """A session of `person_id` ended (`session_id`, or any of theirs): their streams check
    their own session; they and administrators hear of it (their sessions list changed)."""
    kind = ChangeKind.SESSION
    payload = {**_head(position, kind), "person_id": person_id}
    return TypedEvent(
        position=position,
        kind=kind,
        admins=payload,
        about=person_id,
        own=payload,
        subject_id=session_id,
    )


def control(position: int, kind: ChangeKind, *, users_too: bool) -> TypedEvent:
    """A workspace-wide change with nothing to carry (settings reload; an email log, an
    automation or a template changed): administrators, and users when `users_too`."""
    payload = _head(position, kind)
    return TypedEvent(
        position=position, kind=kind, users=payload if users_too else None, admins=payload
    )


def admins_only(position: int, kind: ChangeKind) -> TypedEvent:
    return control(position, kind, users_too=False)
