"""Writes on people, items and conversations, inside a caller's transaction.

Every function takes an open session and the time, and returns what changed; the caller
(`services.api`, the mail reader, the automations) owns the transaction and the change feed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.headers import check_header_text, normalize_address
from services.domain.model import MAX_MESSAGE_CHARS, ConversationKind, PersonKind
from services.domain.recipients import recipients
from services.domain.schedule import due_at
from services.errors import InputError, PermissionDeniedError
from services.store import queries
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
    "MAX_NAME_CHARS",
    "MAX_TITLE_CHARS",
    "NewMessage",
    "add_person",
    "clean_message_text",
    "create_item",
    "direct_conversation",
    "follow",
    "post_message",
    "unfollow",
]

MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 300


def clean_message_text(text: str) -> str:
    """Message text as stored: plain text, no NULs or stray controls, within the size limit."""
    cleaned = "".join(
        ch
        for ch in text.replace("\r\n", "\n").replace("\r", "\n")
        if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    ).strip()
    if not cleaned:
        raise InputError("the message is empty")
    if len(cleaned) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"the message is too long ({len(cleaned):,} characters; at most {MAX_MESSAGE_CHARS:,})"
        )
    return cleaned


def _clean_line(value: str, *, field: str, limit: int) -> str:
    # Names and titles end up in email headers (E11): refuse line breaks and encoded words here.
    cleaned = check_header_text(value.strip(), field=field)
    if not cleaned:
        raise InputError(f"the {field} is empty")
    if len(cleaned) > limit:
        raise InputError(f"the {field} is too long ({len(cleaned)} characters; at most {limit})")
    return cleaned


async def add_person(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    kind: PersonKind,
    now: datetime,
    is_admin: bool | None = None,
) -> Person:
    address = normalize_address(email)
    clean_name = _clean_line(name, field="name", limit=MAX_NAME_CHARS)
    exists = await session.scalar(select(Person.id).where(Person.email == address))
    if exists is not None:
        raise InputError(f"{address} already exists")
    if is_admin is None:
        # The first user of a workspace administers it.
        users = await session.scalar(select(func.count()).where(Person.kind == PersonKind.USER))
        is_admin = kind is PersonKind.USER and users == 0
    person = Person(
        email=address,
        name=clean_name,
        kind=kind,
        is_admin=is_admin,
        created_at=now,
        dnd_weekly=[],
    )
    session.add(person)
    await session.flush()
    queries.add_change(session, kind=ChangeKind.PERSON, at=now, person_id=person.id)
    return person


async def create_item(
    session: AsyncSession,
    *,
    title: str,
    followers: list[Person],
    now: datetime,
    requester: Person | None = None,
) -> Item:
    clean_title = _clean_line(title, field="title", limit=MAX_TITLE_CHARS)
    number = (await session.scalar(select(func.max(Item.number)))) or 0
    item = Item(
        number=number + 1,
        title=clean_title,
        status="open",
        requester_id=requester.id if requester else None,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    await session.flush()
    # N2: the internal conversation is where the team starts: it is active from now on, so
    # the new item shows in the inbox before anyone writes.
    internal = Conversation(
        kind=ConversationKind.INTERNAL, item_id=item.id, created_at=now, last_message_at=now
    )
    session.add(internal)
    session.add(Conversation(kind=ConversationKind.EXTERNAL, item_id=item.id, created_at=now))
    wanted = {p.id: p for p in followers}
    if requester is not None:
        wanted.setdefault(requester.id, requester)
    for person_id in wanted:
        session.add(Follower(item_id=item.id, person_id=person_id))
    await session.flush()
    queries.add_change(session, kind=ChangeKind.ITEM, at=now, conversation_id=internal.id)
    return item


async def follow(session: AsyncSession, *, item: Item, person: Person, now: datetime) -> bool:
    if await session.get(Follower, (item.id, person.id)) is not None:
        return False
    session.add(Follower(item_id=item.id, person_id=person.id))
    queries.add_change(session, kind=ChangeKind.FOLLOW, at=now, person_id=person.id)
    return True


async def unfollow(session: AsyncSession, *, item: Item, person: Person, now: datetime) -> bool:
    result = await session.execute(
        delete(Follower).where(Follower.item_id == item.id, Follower.person_id == person.id)
    )
    queries.add_change(session, kind=ChangeKind.FOLLOW, at=now, person_id=person.id)
    return bool(getattr(result, "rowcount", 0))


async def direct_conversation(
    session: AsyncSession, *, a: Person, b: Person, now: datetime
) -> Conversation:
    if not (a.kind == PersonKind.USER and b.kind == PersonKind.USER):
        raise PermissionDeniedError("direct conversations are between users only")
    if a.id == b.id:
        raise InputError("a direct conversation needs two different people")
    low, high = sorted((a.id, b.id))
    key = f"{low}:{high}"
    conv = (
        await session.execute(select(Conversation).where(Conversation.direct_key == key))
    ).scalar_one_or_none()
    if conv is None:
        conv = Conversation(kind=ConversationKind.DIRECT, direct_key=key, created_at=now)
        session.add(conv)
        await session.flush()
        session.add_all(
            [
                ConversationMember(conversation_id=conv.id, person_id=low),
                ConversationMember(conversation_id=conv.id, person_id=high),
            ]
        )
    return conv


@dataclass(frozen=True, slots=True)
class NewMessage:
    message: Message
    recipient_ids: tuple[int, ...]


async def post_message(
    session: AsyncSession,
    *,
    conversation: Conversation,
    author: Person | None,
    text: str,
    now: datetime,
    default_delay_s: int,
    source: str = "person",
    automation_id: int | None = None,
    email_id: int | None = None,
) -> NewMessage:
    """Write a message and one delivery per recipient (R1-R4), with its due time (E1)."""
    kind = ConversationKind(conversation.kind)
    body = clean_message_text(text)
    people = list(await queries.audience(session, conversation))
    if author is not None:
        if author.kind == PersonKind.CUSTOMER and kind.users_only:
            raise PermissionDeniedError("customers cannot write in internal conversations")
        if all(p.id != author.id for p in people):
            if author.kind == PersonKind.CUSTOMER or conversation.item_id is None:
                raise PermissionDeniedError(
                    f"{author.email} does not take part in this conversation"
                )
            # A user who writes about an item follows it from then on.
            session.add(Follower(item_id=conversation.item_id, person_id=author.id))
    message = Message(
        conversation_id=conversation.id,
        author_id=author.id if author else None,
        text=body,
        created_at=now,
        source=source,
        automation_id=automation_id,
        email_id=email_id,
    )
    session.add(message)
    await session.flush()
    targets = recipients(
        kind=kind,
        author_id=author.id if author else None,
        audience=[queries.domain_person(p) for p in people],
    )
    by_id = {p.id: p for p in people}
    for target in targets:
        settings = queries.settings_of(by_id[target.id], default_delay_s=default_delay_s)
        session.add(
            Delivery(
                message_id=message.id,
                recipient_id=target.id,
                conversation_id=conversation.id,
                created_at=now,
                due_at=due_at(created_at=now, settings=settings),
            )
        )
    conversation.last_message_at = now
    conversation.last_message_id = message.id
    queries.add_change(session, kind=ChangeKind.MESSAGE, at=now, conversation_id=conversation.id)
    return NewMessage(message=message, recipient_ids=tuple(t.id for t in targets))
