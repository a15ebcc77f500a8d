"""The reads behind the window: unseen counts, the Open Conversations list, a conversation's
messages with their status icons (N2, N3, E10, D5). Units of work for `Database.read`; the
window's first page (counts, the list, the open conversation) runs on prepared statements,
defined here and turned into views by `services.window_reads`, which the desktop's first
window also runs on plain sqlite3 before the service is open."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, and_, bindparam, func, literal_column, or_, select
from sqlalchemy.orm import aliased

from services import window_reads
from services.domain.model import (
    MAX_SEARCH_CHARS,
    ConversationKind,
    PersonKind,
)
from services.store import queries
from services.store.database import Tx
from services.store.models import (
    Conversation,
    ConversationMember,
    Delivery,
    Email,
    Item,
    Message,
    Person,
)
from services.store.prepared import Prepared
from services.store.window_statements import TxReads
from services.views import (
    ConversationRow,
    MessageRow,
    UnseenCounts,
)

__all__ = [
    "find_conversations",
    "item_messages",
    "messages",
    "open_conversations",
    "unseen_counts",
]

_UNSEEN = Prepared[tuple[int, str, int]](
    select(Delivery.conversation_id, Conversation.kind, func.count())
    .join(Conversation, Conversation.id == Delivery.conversation_id)
    .where(Delivery.recipient_id == bindparam("person_id"), Delivery.seen_at.is_(None))
    .group_by(Delivery.conversation_id, Conversation.kind)
)


def unseen_counts(tx: Tx, person_id: int) -> UnseenCounts:
    """N3: one query; the bubble, the tabs and the rows all read from it."""
    return window_reads.unseen_counts(TxReads(tx), person_id)


# --- Open Conversations (N2) -------------------------------------------------------------


def _open_rows(kinds: tuple[str, ...], *, by_ids: bool) -> Any:
    unseen = (
        select(Delivery.conversation_id, func.count().label("n"))
        .where(Delivery.recipient_id == bindparam("person_id"), Delivery.seen_at.is_(None))
        .group_by(Delivery.conversation_id)
        .subquery()
    )
    last = aliased(Message)
    author = aliased(Person)
    viewer: Any = bindparam("person_id")
    stmt = (
        select(
            Conversation.id,
            Conversation.kind,
            Item.number,
            Item.title,
            Conversation.last_message_at,
            last.text,
            author.name,
            func.coalesce(unseen.c.n, 0),
        )
        .outerjoin(Item, Item.id == Conversation.item_id)
        .outerjoin(last, last.id == Conversation.last_message_id)
        .outerjoin(author, author.id == last.author_id)
        .outerjoin(unseen, unseen.c.conversation_id == Conversation.id)
        .where(
            # The kinds are written into the statement (one per inbox): no list to expand.
            Conversation.kind.in_(
                [literal_column(f"'{ConversationKind(k).value}'") for k in kinds]
            ),
            Conversation.last_message_at.is_not(None),
            queries.visible_conversations_clause(viewer),
        )
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
    )
    if by_ids:
        return stmt.where(Conversation.id.in_(bindparam("ids", expanding=True)))
    return stmt.limit(bindparam("limit")).offset(bindparam("offset"))


def _literal(kind: str) -> Any:
    return literal_column(f"'{ConversationKind(kind).value}'")


@functools.cache
def _open_page(kinds: tuple[str, ...], by_ids: bool) -> Prepared[Any]:
    """The list's statement for one set of conversation kinds (the window asks for two)."""
    return Prepared(_open_rows(kinds, by_ids=by_ids))


_DIRECT_NAMES = Prepared[tuple[int, str]](
    select(ConversationMember.conversation_id, Person.name)
    .join(Person, Person.id == ConversationMember.person_id)
    .where(
        ConversationMember.conversation_id.in_(bindparam("ids", expanding=True)),
        ConversationMember.person_id != bindparam("person_id"),
    )
)


def open_conversations(
    tx: Tx,
    *,
    person_id: int,
    inbox: Sequence[ConversationKind],
    limit: int = 200,
    offset: int = 0,
    conversation_ids: Sequence[int] | None = None,
) -> list[ConversationRow]:
    """N2: the person's conversations with activity, most recent activity first."""
    return window_reads.open_conversations(
        TxReads(tx),
        person_id=person_id,
        inbox=inbox,
        limit=limit,
        offset=offset,
        conversation_ids=conversation_ids,
    )


def find_conversations(tx: Tx, *, person_id: int, text: str, limit: int) -> list[ConversationRow]:
    """D5 (Ctrl+K): the person's conversations in both inboxes whose item number is `text`
    ('12' or '#12'), or whose title (a direct one's: the other person's name) holds every
    word of it, case-blind; the exact number first, then the most recent."""
    query = text.strip().lstrip("#").strip()
    words = query.lower().split()
    if not words or len(query) > MAX_SEARCH_CHARS:  # longer than anything it could match
        return []
    person = queries.person_by_id(tx, person_id, default_delay_s=0)
    # R2: a customer never learns that an internal conversation exists.
    kinds = (
        list(ConversationKind) if person.kind is PersonKind.USER else [ConversationKind.EXTERNAL]
    )
    other = aliased(Person)
    direct_names = (
        select(ConversationMember.conversation_id)
        .join(other, other.id == ConversationMember.person_id)
        .where(
            ConversationMember.person_id != person_id,
            *(func.lower(other.name).contains(w, autoescape=True) for w in words),
        )
    )
    found = or_(
        and_(*(func.lower(Item.title).contains(w, autoescape=True) for w in words)),
        and_(
            Conversation.kind == ConversationKind.DIRECT.value,
            Conversation.id.in_(direct_names),
        ),
    )
    number = int(query) if query.isdigit() and len(query) < 10 else None
    if number is not None:
        found = or_(Item.number == number, found)
    stmt = (
        select(Conversation.id)
        .outerjoin(Item, Item.id == Conversation.item_id)
        .where(
            Conversation.kind.in_([k.value for k in kinds]),
            Conversation.last_message_at.is_not(None),
            queries.visible_conversations_clause(person_id),
            found,
        )
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    if number is not None:
        stmt = stmt.order_by(None).order_by(
            func.coalesce(Item.number == number, False).desc(),
            Conversation.last_message_at.desc(),
            Conversation.id.desc(),
        )
    ids = list(tx.conn.execute(stmt).scalars())
    rows = open_conversations(tx, person_id=person_id, inbox=kinds, conversation_ids=ids)
    order = {cid: i for i, cid in enumerate(ids)}
    return sorted(rows, key=lambda r: order[r.id])


# --- a conversation's messages (E10) --------------------------------------------------------------

_MESSAGE_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.author_id,
    Message.text,
    Message.created_at,
    Message.source,
)
_MessageRow = tuple[int, int, int | None, str, datetime, str]
_VIEWER = Prepared[tuple[int, str, str, str, str | None]](
    select(Person.id, Person.email, Person.name, Person.kind, Conversation.kind)
    .select_from(Person)
    .outerjoin(Conversation, Conversation.id == bindparam("conversation_id"))
    .where(Person.id == bindparam("viewer_id"))
)
_PAGE = Prepared[_MessageRow](
    select(*_MESSAGE_COLUMNS)
    # BIGINT: "before no message" is past a team replica's provisional ids (services/team).
    .where(
        queries.messages_before(
            bindparam("conversation_id"), bindparam("before_id", type_=BigInteger)
        )
    )
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)
_BY_IDS = Prepared[_MessageRow](
    select(*_MESSAGE_COLUMNS).where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.deleted_at.is_(None),
        Message.id.in_(bindparam("ids", expanding=True)),
    )
)
_AUTHORS = Prepared(
    select(*queries.PERSON_COLUMNS).where(Person.id.in_(bindparam("ids", expanding=True)))
)
_STATUS = Prepared(
    select(
        Delivery.message_id,
        Delivery.recipient_id,
        Delivery.seen_at,
        Delivery.state,
        Delivery.reason,
        Person.name,
        Person.email,
        Email.status,
        Email.sent_at,
        Email.reply,
        Email.next_attempt_at,
        Email.reason,
    )
    .join(Person, Person.id == Delivery.recipient_id)
    .outerjoin(Email, Email.id == Delivery.email_id)
    .where(Delivery.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(Delivery.id)
)


def messages(
    tx: Tx,
    *,
    conversation_id: int,
    viewer_id: int,
    default_delay_s: int,
    before_id: int | None = None,
    limit: int = 200,
    message_ids: Sequence[int] | None = None,
) -> list[MessageRow]:
    """A page of a conversation, oldest first, with each message's status (E10)."""
    return window_reads.messages(
        TxReads(tx),
        conversation_id=conversation_id,
        viewer_id=viewer_id,
        default_delay_s=default_delay_s,
        before_id=before_id,
        limit=limit,
        message_ids=message_ids,
    )


def item_messages(
    tx: Tx, number: int, *, default_delay_s: int
) -> list[tuple[ConversationKind, MessageRow]]:
    """Every message of item N, both conversations, oldest first (`deskbell item show`)."""
    item_id = queries.item_id_by_number(tx, number)
    found = list(
        tx.conn.execute(
            select(*_MESSAGE_COLUMNS, Conversation.kind)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.item_id == item_id, Message.deleted_at.is_(None))
            .order_by(Message.id)
        )
    )
    kinds = {row[0]: ConversationKind(row[-1]) for row in found}
    rows: list[Any] = [tuple(row[:-1]) for row in found]
    views = window_reads.message_rows(TxReads(tx), rows, 0, default_delay_s)
    return [(kinds[v.id], v) for v in views]
