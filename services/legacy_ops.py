"""The units of work of posting, people and items, shaped for the incoming-mail router while it
still runs on the old store's async ORM sessions (services/store/db.py).

Each runs the same unit of work as `Database.write` would, inside the router's own
transaction (`run_in_session`), and hands back the ORM rows the router works with. This
module goes when the router runs its transactions on `Database`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services import conversations, items, people
from services.conversations import MAX_NAME_CHARS, MAX_TITLE_CHARS, clean_message_text
from services.domain.model import ConversationKind, PersonKind
from services.store import queries
from services.store.db import run_in_session
from services.store.models import Conversation, Item, Message, Person
from services.views import PersonInfo

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_TITLE_CHARS",
    "NewMessage",
    "add_person",
    "clean_message_text",
    "conversation_ref",
    "create_item",
    "person_info",
    "post_message",
]


@dataclass(frozen=True, slots=True)
class NewMessage:
    message: Message
    recipient_ids: tuple[int, ...]


def person_info(person: Person, *, default_delay_s: int = 0) -> PersonInfo:
    return PersonInfo(
        id=person.id,
        email=person.email,
        name=person.name,
        kind=PersonKind(person.kind),
        is_admin=person.is_admin,
        settings=queries.settings_of(person, default_delay_s=default_delay_s),
    )


def conversation_ref(conversation: Conversation) -> conversations.ConversationRef:
    return conversations.ConversationRef(
        id=conversation.id,
        kind=ConversationKind(conversation.kind),
        item_id=conversation.item_id,
    )


async def post_message(
    session: AsyncSession,
    *,
    conversation: Conversation,
    author: Person | None,
    text: str,
    now: datetime,
    default_delay_s: int,
    source: str = "person",
    email_id: int | None = None,
) -> NewMessage:
    posted = await run_in_session(
        session,
        conversations.post_message,
        conversation=conversation_ref(conversation),
        author=person_info(author) if author is not None else None,
        text=text,
        now=now,
        default_delay_s=default_delay_s,
        source=source,
        email_id=email_id,
    )
    message = await session.get(Message, posted.message_id)
    assert message is not None
    return NewMessage(message=message, recipient_ids=posted.recipient_ids)


async def add_person(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    kind: PersonKind,
    now: datetime,
    is_admin: bool | None = None,
) -> Person:
    info = await run_in_session(
        session,
        people.add_person,
        email=email,
        name=name,
        kind=kind,
        now=now,
        default_delay_s=0,
        is_admin=is_admin,
    )
    person = await session.get(Person, info.id)
    assert person is not None
    return person


async def create_item(
    session: AsyncSession,
    *,
    title: str,
    followers: list[Person],
    now: datetime,
    requester: Person | None = None,
) -> Item:
    item_id = await run_in_session(
        session,
        items.create_item,
        title=title,
        followers=[person_info(p) for p in followers],
        requester=person_info(requester) if requester is not None else None,
        now=now,
    )
    item = await session.get(Item, item_id)
    assert item is not None
    return item
