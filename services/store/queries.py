"""Look-ups shared by units of work: the only place that knows how a person or an item reads.

A person is read as one typed snapshot (`PersonInfo`, with its `NotificationSettings`) from one
row, by `person_info_from_row`; nothing else interprets the `persons` columns. Everything here
runs inside a unit of work (`Tx`), with statements prepared once (services/store/prepared.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, literal_column, or_, select

from services import window_reads
from services.domain.model import ConversationKind, NotificationSettings, PersonKind
from services.domain.model import Person as DomainPerson
from services.errors import NotFoundError
from services.store.database import Tx
from services.store.models import (
    Conversation,
    ConversationMember,
    Follower,
    Item,
    Message,
    Person,
)
from services.store.prepared import Prepared
from services.store.window_statements import TxReads
from services.views import PersonInfo
from services.window_reads import (
    NEVER_DELAY,
    PERSON_WIDTH,
    effective_delay,
    person_info_from_row,
    settings_from_row,
)

__all__ = [
    "NEVER_DELAY",
    "PERSON_COLUMNS",
    "domain_person",
    "item_id_by_number",
    "messages_before",
    "person_by_email",
    "person_by_id",
    "person_info_from_row",
    "settings_from_row",
    "settings_of",
    "stored_delay",
    "takes_part",
    "visible_conversations_clause",
]

# The columns of a person snapshot, in the order `person_info_from_row` reads them.
PERSON_COLUMNS = (
    Person.id,
    Person.email,
    Person.name,
    Person.kind,
    Person.is_admin,
    Person.notify_in_app,
    Person.notify_email,
    Person.notify_sound,
    Person.delay_s,
    Person.dnd_until,
    Person.dnd_weekly,
)
assert len(PERSON_COLUMNS) == PERSON_WIDTH  # window_reads reads persons without SQLAlchemy


_PING = Prepared(select(literal_column("1")))


def ping(tx: Tx) -> None:
    """A round trip to the database and nothing else (a server's readiness)."""
    tx.run(_PING)


def messages_before(conversation_id: Any, before_id: Any) -> ColumnElement[bool]:
    """The messages of one conversation older than `before_id`, not deleted: for "the N
    before", newest first.

    Read from the index on (conversation_id, id) whatever the statistics say: `id + 0` keeps
    the planner off the primary key, which after ANALYZE over a long history looks cheaper
    and walks every newer message of every conversation (bench_scheduler_history found it:
    a scheduler pass grew with history, and so did the window's first page).
    """
    return and_(
        Message.conversation_id == conversation_id,
        Message.id + literal_column("0") < before_id,
        Message.deleted_at.is_(None),
    )


def stored_delay(delay_s: int | None) -> int:
    return NEVER_DELAY if delay_s is None else delay_s


_PERSON_BY_EMAIL = Prepared(select(*PERSON_COLUMNS).where(Person.email == bindparam("email")))
_PERSON_BY_ID = Prepared(select(*PERSON_COLUMNS).where(Person.id == bindparam("person_id")))
_ITEM_ID = Prepared[tuple[int]](select(Item.id).where(Item.number == bindparam("number")))


def person_by_email(tx: Tx, email: str, *, default_delay_s: int) -> PersonInfo:
    return window_reads.person_by_email(TxReads(tx), email, default_delay_s=default_delay_s)


def person_by_id(tx: Tx, person_id: int, *, default_delay_s: int) -> PersonInfo:
    return window_reads.person_by_id(TxReads(tx), person_id, default_delay_s=default_delay_s)


def item_id_by_number(tx: Tx, number: int) -> int:
    rows = tx.run(_ITEM_ID, {"number": number})
    if not rows:
        raise NotFoundError(f"no item #{number}")
    return rows[0][0]


def visible_conversations_clause(person_id: Any) -> Any:
    """The conversations `person_id` (an id or a bind parameter) takes part in: an item's
    they follow, or a direct one; for a customer, external ones only (R2: following an item
    never shows a customer its internal conversation)."""
    return and_(
        or_(
            Conversation.item_id.in_(
                select(Follower.item_id).where(Follower.person_id == person_id)
            ),
            Conversation.id.in_(
                select(ConversationMember.conversation_id).where(
                    ConversationMember.person_id == person_id
                )
            ),
        ),
        or_(
            Conversation.kind == ConversationKind.EXTERNAL.value,
            select(Person.kind).where(Person.id == person_id).scalar_subquery()
            == PersonKind.USER.value,
        ),
    )


_SEES = Prepared[tuple[int]](
    select(Conversation.id).where(
        Conversation.id == bindparam("b_conversation"),
        visible_conversations_clause(bindparam("b_person")),
    )
)


def takes_part(tx: Tx, *, person_id: int, conversation_id: int) -> bool:
    """Whether the person takes part in the conversation (`visible_conversations_clause`):
    what a customer may read, R2."""
    return bool(tx.run(_SEES, {"b_conversation": conversation_id, "b_person": person_id}))


# --- from ORM rows (the fallback scheduler reads persons through the unit of work's session) --


def settings_of(person: Person, *, default_delay_s: int) -> NotificationSettings:
    return NotificationSettings(
        in_app=person.notify_in_app,
        email=person.notify_email,
        sound=person.notify_sound,
        delay_s=effective_delay(person.delay_s, default_delay_s),
        dnd_until=person.dnd_until,
        dnd_weekly=tuple((int(w[0]), int(w[1]), int(w[2])) for w in person.dnd_weekly or ()),
    )


def domain_person(person: Person) -> DomainPerson:
    return DomainPerson(
        id=person.id, email=person.email, name=person.name, kind=PersonKind(person.kind)
    )
