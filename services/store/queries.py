"""Plain query functions over a session: the only place that knows table shapes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.model import ConversationKind, NotificationSettings, PersonKind
from services.domain.model import Person as DomainPerson
from services.errors import NotFoundError
from services.store.changes import queue_change
from services.store.models import (
    Conversation,
    ConversationMember,
    Delivery,
    Follower,
    Item,
    Person,
)
from services.views import ChangeKind, PersonInfo

__all__ = [
    "add_change",
    "audience",
    "conversation_for_item",
    "domain_person",
    "item_by_number",
    "item_conversation",
    "person_by_email",
    "person_info",
    "settings_of",
]


async def person_by_email(session: AsyncSession, email: str) -> Person:
    person = (
        await session.execute(select(Person).where(Person.email == email.strip().lower()))
    ).scalar_one_or_none()
    if person is None:
        raise NotFoundError(f"no person with the address {email}")
    return person


async def item_by_number(session: AsyncSession, number: int) -> Item:
    item = (await session.execute(select(Item).where(Item.number == number))).scalar_one_or_none()
    if item is None:
        raise NotFoundError(f"no item #{number}")
    return item


async def conversation_for_item(
    session: AsyncSession, item_id: int, kind: ConversationKind
) -> Conversation:
    conv = (
        await session.execute(
            select(Conversation).where(Conversation.item_id == item_id, Conversation.kind == kind)
        )
    ).scalar_one()
    return conv


async def item_conversation(
    session: AsyncSession, number: int, kind: ConversationKind
) -> Conversation:
    """Item N's internal or external conversation, in one query."""
    conv = (
        await session.execute(
            select(Conversation)
            .join(Item, Item.id == Conversation.item_id)
            .where(Item.number == number, Conversation.kind == kind)
        )
    ).scalar_one_or_none()
    if conv is None:
        raise NotFoundError(f"no item #{number}")
    return conv


# A person's stored delay: NULL follows the workspace's default, 0 means "never email me".
NEVER_DELAY = 0


def stored_delay(delay_s: int | None) -> int:
    return NEVER_DELAY if delay_s is None else delay_s


def settings_of(person: Person, *, default_delay_s: int) -> NotificationSettings:
    return NotificationSettings(
        in_app=person.notify_in_app,
        email=person.notify_email,
        sound=person.notify_sound,
        delay_s=(
            default_delay_s
            if person.delay_s is None
            else None
            if person.delay_s == NEVER_DELAY
            else person.delay_s
        ),
        dnd_until=person.dnd_until,
        dnd_weekly=tuple((int(w[0]), int(w[1]), int(w[2])) for w in person.dnd_weekly or ()),
    )


def domain_person(person: Person) -> DomainPerson:
    return DomainPerson(
        id=person.id, email=person.email, name=person.name, kind=PersonKind(person.kind)
    )


def person_info(person: Person, *, default_delay_s: int = 60) -> PersonInfo:
    return PersonInfo(
        id=person.id,
        email=person.email,
        name=person.name,
        kind=PersonKind(person.kind),
        is_admin=person.is_admin,
        settings=settings_of(person, default_delay_s=default_delay_s),
    )


async def audience(session: AsyncSession, conv: Conversation) -> Sequence[Person]:
    """Who a message in `conv` may reach before the rules of R1-R4: followers or members."""
    if conv.item_id is not None:
        stmt = (
            select(Person)
            .join(Follower, Follower.person_id == Person.id)
            .where(Follower.item_id == conv.item_id)
            .order_by(Person.id)
        )
    else:
        stmt = (
            select(Person)
            .join(ConversationMember, ConversationMember.person_id == Person.id)
            .where(ConversationMember.conversation_id == conv.id)
            .order_by(Person.id)
        )
    return (await session.execute(stmt)).scalars().all()


async def mark_seen_rows(
    session: AsyncSession, *, person_id: int, message_ids: Iterable[int], at: datetime
) -> set[int]:
    """Record seen for `person_id`; returns the conversations whose counts fell."""
    ids = list(message_ids)
    if not ids:
        return set()
    convs: set[int] = set()
    for start in range(0, len(ids), 500):  # stay under bound-parameter limits
        chunk = ids[start : start + 500]
        where = and_(
            Delivery.recipient_id == person_id,
            Delivery.message_id.in_(chunk),
            Delivery.seen_at.is_(None),
        )
        convs.update(
            (await session.execute(select(Delivery.conversation_id).where(where).distinct()))
            .scalars()
            .all()
        )
        # A pending delivery seen in time is never emailed (S3); one already handed to an email
        # keeps its state, and the outbox leaves it out if still unsent (E3).
        await session.execute(
            update(Delivery)
            .where(where, Delivery.state == "pending")
            .values(seen_at=at, state="seen")
        )
        await session.execute(update(Delivery).where(where).values(seen_at=at))
    return convs


def add_change(
    session: AsyncSession,
    *,
    kind: ChangeKind,
    at: datetime,
    conversation_id: int | None = None,
    person_id: int | None = None,
) -> None:
    """`record_change` for the modules still on the old store's sessions."""
    queue_change(
        session.info, kind=kind, at=at, conversation_id=conversation_id, person_id=person_id
    )


def visible_conversations_clause(person_id: int) -> object:
    return or_(
        Conversation.item_id.in_(select(Follower.item_id).where(Follower.person_id == person_id)),
        Conversation.id.in_(
            select(ConversationMember.conversation_id).where(
                ConversationMember.person_id == person_id
            )
        ),
    )
