"""The reads behind the window: unseen counts, the Open Conversations list, a conversation's
messages with their status icons (N2, N3, E10, D5). Units of work for `Database.read`; the
window's first page (counts, the list, the open conversation) runs on prepared statements."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, literal_column, or_, select
from sqlalchemy.orm import aliased

from services.domain.model import (
    MAX_SEARCH_CHARS,
    ConversationKind,
    DeliveryState,
    EmailStatus,
    PersonKind,
)
from services.domain.model import Person as DomainPerson
from services.domain.recipients import may_see
from services.errors import NotFoundError
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
from services.views import (
    ConversationRow,
    EmailedEntry,
    MessageRow,
    MessageStatus,
    PersonInfo,
    SeenEntry,
    UnseenCounts,
)

__all__ = [
    "find_conversations",
    "item_messages",
    "messages",
    "open_conversations",
    "unseen_counts",
]

_CHUNK = 500  # ids per IN list: under every engine's bound-parameter limit

_UNSEEN = Prepared[tuple[int, str, int]](
    select(Delivery.conversation_id, Conversation.kind, func.count())
    .join(Conversation, Conversation.id == Delivery.conversation_id)
    .where(Delivery.recipient_id == bindparam("person_id"), Delivery.seen_at.is_(None))
    .group_by(Delivery.conversation_id, Conversation.kind)
)


def unseen_counts(tx: Tx, person_id: int) -> UnseenCounts:
    """N3: one query; the bubble, the tabs and the rows all read from it."""
    by_conv: dict[int, int] = {}
    internal = external = 0
    for conv_id, kind, n in tx.run(_UNSEEN, {"person_id": person_id}):
        by_conv[conv_id] = n
        if kind == ConversationKind.EXTERNAL:
            external += n
        else:
            internal += n
    return UnseenCounts(
        total=internal + external, internal=internal, external=external, by_conversation=by_conv
    )


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
    """N2: the person's conversations with activity (a message, or a new item's internal
    conversation, which shows from its creation on), most recent activity first."""
    kinds = tuple(sorted(k.value for k in inbox))
    if conversation_ids is not None:
        if not conversation_ids:
            return []
        rows = tx.run(
            _open_page(kinds, True), {"person_id": person_id, "ids": list(conversation_ids)}
        )
    else:
        rows = tx.run(
            _open_page(kinds, False), {"person_id": person_id, "limit": limit, "offset": offset}
        )
    directs = [r[0] for r in rows if r[1] == ConversationKind.DIRECT]
    direct_titles = (
        dict(tx.run(_DIRECT_NAMES, {"ids": directs, "person_id": person_id})) if directs else {}
    )
    return [
        ConversationRow(
            id=cid,
            kind=ConversationKind(kind),
            item_number=number,
            title=title if title is not None else direct_titles.get(cid, "Direct"),
            last_text=(text or "")[:300],
            # A message without an author is an automation's; no message, no author.
            last_author=author_name or ("Deskbell" if text is not None else ""),
            last_at=last_at,
            unseen=n,
        )
        for cid, kind, number, title, last_at, text, author_name, n in rows
    ]


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
    .where(queries.messages_before(bindparam("conversation_id"), bindparam("before_id")))
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
_NO_LIMIT = 2**31 - 1  # "before no message": ids are 32-bit INTEGER on PostgreSQL


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
    found = tx.run(_VIEWER, {"conversation_id": conversation_id, "viewer_id": viewer_id})
    missing = NotFoundError("no such conversation or person")
    if not found or found[0][4] is None:
        raise missing
    pid, email, name, kind, conversation_kind = found[0]
    viewer = DomainPerson(id=pid, email=email, name=name, kind=PersonKind(kind))
    # R2: a customer reads only the external conversations they take part in; any other
    # answers as a missing one, so its existence shows neither.
    if not may_see(viewer, ConversationKind(str(conversation_kind))) or (
        not viewer.is_user
        and not queries.takes_part(tx, person_id=pid, conversation_id=conversation_id)
    ):
        raise missing
    if message_ids is not None:
        rows = (
            tx.run(_BY_IDS, {"conversation_id": conversation_id, "ids": list(message_ids)})
            if message_ids
            else []
        )
    else:
        rows = tx.run(
            _PAGE,
            {
                "conversation_id": conversation_id,
                "before_id": _NO_LIMIT if before_id is None else before_id,
                "limit": limit,
            },
        )
    rows.sort(key=lambda r: r[0])
    return _message_rows(tx, rows, viewer_id, default_delay_s)


def _message_rows(
    tx: Tx, rows: Sequence[_MessageRow], viewer_id: int, default_delay_s: int
) -> list[MessageRow]:
    ids = [r[0] for r in rows]
    author_ids = sorted({r[2] for r in rows if r[2]})
    authors: dict[int, PersonInfo] = {}
    for start in range(0, len(author_ids), _CHUNK):
        for row in tx.run(_AUTHORS, {"ids": author_ids[start : start + _CHUNK]}):
            person = queries.person_info_from_row(row, default_delay_s=default_delay_s)
            authors[person.id] = person
    seen: dict[int, list[SeenEntry]] = {}
    emailed: dict[int, list[EmailedEntry]] = {}
    waiting: dict[int, list[str]] = {}
    unseen_by_viewer: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        for (
            mid,
            rid,
            seen_at,
            state,
            reason,
            name,
            email,
            e_status,
            e_sent,
            e_reply,
            e_next,
            e_reason,
        ) in tx.run(_STATUS, {"ids": ids[start : start + _CHUNK]}):
            if rid == viewer_id and seen_at is None:
                unseen_by_viewer.add(mid)
            if seen_at is not None:
                seen.setdefault(mid, []).append(SeenEntry(name=name, email=email, at=seen_at))
            if e_status is not None:
                detail = e_reason or e_reply
                if e_status == EmailStatus.RETRYING and e_next is not None:
                    detail = f"{e_reply or 'not reached'}; next try {e_next:%H:%M:%S} UTC"
                emailed.setdefault(mid, []).append(
                    EmailedEntry(name=name, email=email, status=e_status, at=e_sent, detail=detail)
                )
            elif state == DeliveryState.SUPPRESSED and seen_at is None:
                emailed.setdefault(mid, []).append(
                    EmailedEntry(
                        name=name, email=email, status="suppressed", at=None, detail=reason
                    )
                )
            elif seen_at is None:
                waiting.setdefault(mid, []).append(name)
    return [
        MessageRow(
            id=mid,
            conversation_id=conv_id,
            author=authors.get(author_id) if author_id else None,
            text=text,
            created_at=created_at,
            source=source,
            status=MessageStatus(
                sent_at=created_at,
                seen=tuple(seen.get(mid, ())),
                emailed=tuple(emailed.get(mid, ())),
                waiting=tuple(waiting.get(mid, ())),
            ),
            unseen_by_viewer=mid in unseen_by_viewer,
        )
        for mid, conv_id, author_id, text, created_at, source in rows
    ]


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
    views = _message_rows(tx, rows, 0, default_delay_s)
    return [(kinds[v.id], v) for v in views]
