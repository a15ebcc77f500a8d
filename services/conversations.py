"""Messages and conversations, as units of work: post, delete, mark seen, direct conversations.

Every function here runs inside a caller's transaction (`Tx`, services/store/database.py),
returns plain frozen dataclasses, and records what it changed (`record_change`). The hot ones
(posting, marking seen) use prepared statements and as few of them as the rules allow.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, select, update
from sqlalchemy.orm import aliased

from services import window_reads
from services.domain.headers import check_header_text
from services.domain.model import (
    MAX_MESSAGE_CHARS,
    ConversationKind,
    DeliveryState,
    PersonKind,
)
from services.domain.model import Person as DomainPerson
from services.domain.recipients import recipients
from services.domain.schedule import REASON_DELETED, due_at
from services.errors import InputError, NotFoundError, PermissionDeniedError
from services.store import queries
from services.store.changes import record_change
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
from services.store.window_statements import TxReads
from services.views import ChangeKind, ConversationInfo, PersonInfo

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_TITLE_CHARS",
    "ConversationRef",
    "Posted",
    "Target",
    "audience",
    "clean_line",
    "clean_message_text",
    "conversation_info",
    "conversation_ref",
    "delete_message",
    "direct_conversation",
    "find_target",
    "mark_item_seen",
    "mark_seen",
    "post_message",
    "posted_with_client_id",
]

MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 300
_SEEN_CHUNK = 500  # message ids per statement: under every engine's bound-parameter limit


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


def clean_line(value: str, *, field: str, limit: int) -> str:
    """A name or a title: they end up in email headers (E11), so line breaks and encoded
    words are refused here."""
    cleaned = check_header_text(value.strip(), field=field)
    if not cleaned:
        raise InputError(f"the {field} is empty")
    if len(cleaned) > limit:
        raise InputError(f"the {field} is too long ({len(cleaned)} characters; at most {limit})")
    return cleaned


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """What posting needs to know of a conversation."""

    id: int
    kind: ConversationKind
    item_id: int | None


@dataclass(frozen=True, slots=True)
class Posted:
    """A message written, and who it is for (R1-R4)."""

    message_id: int
    conversation: ConversationRef
    author_id: int | None
    recipient_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """The author and the conversation of a post, with the conversation's audience."""

    author: PersonInfo
    conversation: ConversationRef
    audience: tuple[PersonInfo, ...]


# --- reading what a post needs ---------------------------------------------------------------

_member = aliased(Person, name="member")
_author = aliased(Person, name="author")
_AUDIENCE_COLUMNS = tuple(getattr(_member, c.key) for c in queries.PERSON_COLUMNS)


def _with_audience(stmt: Any) -> Any:
    """An item's followers, or a direct conversation's two members, joined to each row
    (outer joins: a conversation nobody follows still yields its one row)."""
    return (
        stmt.outerjoin(Follower, Follower.item_id == Conversation.item_id)
        .outerjoin(
            ConversationMember,
            and_(
                ConversationMember.conversation_id == Conversation.id,
                Conversation.item_id.is_(None),
            ),
        )
        .outerjoin(
            _member, _member.id == func.coalesce(Follower.person_id, ConversationMember.person_id)
        )
        .order_by(_member.id)
    )


_TARGET_COLUMNS = (
    *(getattr(_author, c.key) for c in queries.PERSON_COLUMNS),
    Conversation.id,
    Conversation.kind,
    Conversation.item_id,
    *_AUDIENCE_COLUMNS,
)
# One statement for the author, the conversation and everyone who may receive the message.
_TARGET_BY_CONVERSATION = Prepared(
    _with_audience(
        select(*_TARGET_COLUMNS)
        .select_from(_author)
        .join(Conversation, Conversation.id == bindparam("conversation_id"))
        .where(_author.email == bindparam("email"))
    )
)
_TARGET_BY_ITEM = Prepared(
    _with_audience(
        select(*_TARGET_COLUMNS)
        .select_from(_author)
        .join(Item, Item.number == bindparam("number"))
        .join(
            Conversation,
            and_(Conversation.item_id == Item.id, Conversation.kind == bindparam("kind")),
        )
        .where(_author.email == bindparam("email"))
    )
)
_AUDIENCE = Prepared(
    _with_audience(
        select(Conversation.id, *_AUDIENCE_COLUMNS).where(
            Conversation.id == bindparam("conversation_id")
        )
    )
)
_CONVERSATION = Prepared[tuple[int, str, int | None]](
    select(Conversation.id, Conversation.kind, Conversation.item_id).where(
        Conversation.id == bindparam("conversation_id")
    )
)
_WIDTH = len(queries.PERSON_COLUMNS)


def find_target(
    tx: Tx,
    *,
    author: str,
    default_delay_s: int,
    conversation_id: int | None = None,
    item_number: int | None = None,
    kind: ConversationKind | None = None,
) -> Target:
    """`author` (an address) and the conversation they post in, by id or by item number and
    kind, with its audience: one statement."""
    email = author.strip().lower()
    if conversation_id is not None:
        rows = tx.run(_TARGET_BY_CONVERSATION, {"email": email, "conversation_id": conversation_id})
    elif item_number is not None and kind is not None:
        rows = tx.run(_TARGET_BY_ITEM, {"email": email, "number": item_number, "kind": kind.value})
    else:
        raise InputError("say which conversation to post in")
    if not rows:
        queries.person_by_email(tx, author, default_delay_s=default_delay_s)  # names the author
        if conversation_id is not None:
            raise NotFoundError(f"no conversation {conversation_id}")
        raise NotFoundError(f"no item #{item_number}")
    first = rows[0]
    target = Target(
        author=queries.person_info_from_row(first[:_WIDTH], default_delay_s=default_delay_s),
        conversation=ConversationRef(
            id=first[_WIDTH],
            kind=ConversationKind(first[_WIDTH + 1]),
            item_id=first[_WIDTH + 2],
        ),
        audience=window_reads.members(rows, _WIDTH + 3, default_delay_s),
    )
    # R2: a conversation id a customer may not write in answers as a missing one would, so
    # ids tell a customer nothing of internal conversations or of other customers'. (By item
    # number, `post_message` refuses: every item has an internal conversation anyway.)
    if (
        conversation_id is not None
        and target.author.kind is PersonKind.CUSTOMER
        and (
            target.conversation.kind.users_only
            or all(p.id != target.author.id for p in target.audience)
        )
    ):
        raise NotFoundError(f"no conversation {conversation_id}")
    return target


def conversation_ref(tx: Tx, conversation_id: int) -> ConversationRef:
    rows = tx.run(_CONVERSATION, {"conversation_id": conversation_id})
    if not rows:
        raise NotFoundError(f"no conversation {conversation_id}")
    cid, kind, item_id = rows[0]
    return ConversationRef(id=cid, kind=ConversationKind(kind), item_id=item_id)


def audience(tx: Tx, conversation_id: int, *, default_delay_s: int) -> tuple[PersonInfo, ...]:
    """Who a message in the conversation may reach before R1-R4: followers or members."""
    return window_reads.audience(TxReads(tx), conversation_id, default_delay_s=default_delay_s)


# --- posting ------------------------------------------------------------------------------------

_INSERT_MESSAGE = Prepared[tuple[int]](insert(Message).returning(Message.id))
_INSERT_DELIVERY = Prepared(insert(Delivery))
_INSERT_FOLLOWER = Prepared(insert(Follower))
_TOUCH_CONVERSATION = Prepared(
    update(Conversation)
    .where(Conversation.id == bindparam("b_id"))
    .values(last_message_at=bindparam("b_at"), last_message_id=bindparam("b_message"))
)


def _domain(person: PersonInfo) -> DomainPerson:
    return DomainPerson(id=person.id, email=person.email, name=person.name, kind=person.kind)


def post_message(
    tx: Tx,
    *,
    conversation: ConversationRef,
    author: PersonInfo | None,
    text: str,
    now: datetime,
    default_delay_s: int,
    audience_: Sequence[PersonInfo] | None = None,
    source: str = "person",
    automation_id: int | None = None,
    email_id: int | None = None,
    client_id: str | None = None,
) -> Posted:
    """Write a message and one delivery per recipient (R1-R4), with its due time (E1).

    `audience_` is the conversation's audience when the caller read it already (a post reads
    it with its author and conversation); otherwise it is read here. `client_id`: the id the
    writing client gave it (T5, unique: see `posted_with_client_id`).
    """
    body = clean_message_text(text)
    people = (
        audience_
        if audience_ is not None
        else audience(tx, conversation.id, default_delay_s=default_delay_s)
    )
    if author is not None:
        if author.kind is PersonKind.CUSTOMER and conversation.kind.users_only:
            raise PermissionDeniedError("customers cannot write in internal conversations")
        if all(p.id != author.id for p in people):
            if author.kind is PersonKind.CUSTOMER or conversation.item_id is None:
                raise PermissionDeniedError(
                    f"{author.email} does not take part in this conversation"
                )
            # A user who writes about an item follows it from then on.
            tx.run(_INSERT_FOLLOWER, {"item_id": conversation.item_id, "person_id": author.id})
    ((message_id,),) = tx.run(
        _INSERT_MESSAGE,
        {
            "conversation_id": conversation.id,
            "author_id": author.id if author else None,
            "text": body,
            "created_at": now,
            "source": source,
            "automation_id": automation_id,
            "email_id": email_id,
            "client_id": client_id,
        },
    )
    by_id = {p.id: p for p in people}
    targets = recipients(
        kind=conversation.kind,
        author_id=author.id if author else None,
        audience=[_domain(p) for p in people],
    )
    tx.run_many(
        _INSERT_DELIVERY,
        [
            {
                "message_id": message_id,
                "recipient_id": target.id,
                "conversation_id": conversation.id,
                "created_at": now,
                "due_at": due_at(created_at=now, settings=by_id[target.id].settings),
            }
            for target in targets
        ],
    )
    tx.run(_TOUCH_CONVERSATION, {"b_id": conversation.id, "b_at": now, "b_message": message_id})
    record_change(
        tx, kind=ChangeKind.MESSAGE, at=now, conversation_id=conversation.id, subject_id=message_id
    )
    return Posted(
        message_id=message_id,
        conversation=conversation,
        author_id=author.id if author else None,
        recipient_ids=tuple(t.id for t in targets),
    )


_BY_CLIENT_ID = Prepared[tuple[int, int, int | None, str | None]](
    select(Message.id, Message.conversation_id, Message.author_id, Person.email)
    .outerjoin(Person, Person.id == Message.author_id)
    .where(Message.client_id == bindparam("client_id"))
)
_RECIPIENTS = Prepared[tuple[int]](
    select(Delivery.recipient_id)
    .where(Delivery.message_id == bindparam("message_id"))
    .order_by(Delivery.recipient_id)
)


def posted_with_client_id(tx: Tx, *, client_id: str, author: str) -> Posted | None:
    """T5: the message `author` already posted with this client id (a write sent again after
    its answer was lost), or None. Another author's id is refused, never shown."""
    rows = tx.run(_BY_CLIENT_ID, {"client_id": client_id})
    if not rows:
        return None
    message_id, conversation_id, author_id, email = rows[0]
    if email is None or email != author.strip().lower():
        raise InputError("that client id was already used for another message")
    return Posted(
        message_id=message_id,
        conversation=conversation_ref(tx, conversation_id),
        author_id=author_id,
        recipient_ids=tuple(r for (r,) in tx.run(_RECIPIENTS, {"message_id": message_id})),
    )


# --- deleting and seeing ------------------------------------------------------------------------

_MESSAGE_FOR_DELETE = Prepared[tuple[int, int | None, datetime | None]](
    select(Message.conversation_id, Message.author_id, Message.deleted_at).where(
        Message.id == bindparam("message_id")
    )
)
_DELETE_MESSAGE = Prepared(
    update(Message).where(Message.id == bindparam("b_id")).values(deleted_at=bindparam("b_at"))
)
# E3: a pending delivery will never be emailed; one already queued is left out by the
# outbox's re-check. Either way the message stops counting as unseen (N3).
_SUPPRESS_DELETED = Prepared(
    update(Delivery)
    .where(Delivery.message_id == bindparam("b_id"))
    .values(
        state=case(
            (Delivery.state == DeliveryState.PENDING.value, DeliveryState.SUPPRESSED.value),
            else_=Delivery.state,
        ),
        reason=case(
            (Delivery.state == DeliveryState.PENDING.value, REASON_DELETED),
            else_=Delivery.reason,
        ),
        seen_at=func.coalesce(Delivery.seen_at, bindparam("b_at")),
    )
)


def delete_message(tx: Tx, *, message_id: int, actor: PersonInfo, now: datetime) -> int:
    """Delete a message (its author or an administrator); returns its conversation."""
    rows = tx.run(_MESSAGE_FOR_DELETE, {"message_id": message_id})
    if not rows or rows[0][2] is not None:
        raise NotFoundError(f"no message {message_id}")
    conversation_id, author_id, _deleted = rows[0]
    if author_id != actor.id and not actor.is_admin:
        raise PermissionDeniedError("only its author or an administrator may delete a message")
    tx.run(_DELETE_MESSAGE, {"b_id": message_id, "b_at": now})
    tx.run(_SUPPRESS_DELETED, {"b_id": message_id, "b_at": now})
    record_change(
        tx, kind=ChangeKind.MESSAGE, at=now, conversation_id=conversation_id, subject_id=message_id
    )
    return conversation_id


# S2, S3: a pending delivery seen in time is never emailed; one already handed to an email
# keeps its state, and the outbox leaves it out if still unsent (E3). One statement.
_MARK_SEEN = Prepared[tuple[int]](
    update(Delivery)
    .where(
        Delivery.recipient_id == bindparam("b_person"),
        Delivery.message_id.in_(bindparam("b_ids", expanding=True)),
        Delivery.seen_at.is_(None),
    )
    .values(
        seen_at=bindparam("b_at"),
        state=case(
            (Delivery.state == DeliveryState.PENDING.value, DeliveryState.SEEN.value),
            else_=Delivery.state,
        ),
    )
    .returning(Delivery.conversation_id)
)


def mark_seen(tx: Tx, *, person_id: int, message_ids: Sequence[int], at: datetime) -> set[int]:
    """S2: record that `person_id` saw these messages; returns the conversations whose counts
    fell."""
    convs: set[int] = set()
    for start in range(0, len(message_ids), _SEEN_CHUNK):
        chunk = list(message_ids[start : start + _SEEN_CHUNK])
        rows = tx.run(_MARK_SEEN, {"b_person": person_id, "b_ids": chunk, "b_at": at})
        convs.update(cid for (cid,) in rows)
    for conversation_id in sorted(convs):
        record_change(
            tx, kind=ChangeKind.SEEN, at=at, conversation_id=conversation_id, person_id=person_id
        )
    return convs


_UNSEEN_IN_ITEM = Prepared[tuple[int]](
    select(Delivery.message_id)
    .join(Conversation, Conversation.id == Delivery.conversation_id)
    .join(Item, Item.id == Conversation.item_id)
    .join(Person, Person.id == Delivery.recipient_id)
    .where(
        Item.number == bindparam("number"),
        Person.email == bindparam("email"),
        Delivery.seen_at.is_(None),
    )
)


def mark_item_seen(
    tx: Tx, *, number: int, email: str, at: datetime, default_delay_s: int
) -> set[int]:
    """`deskbell seen N --as EMAIL`: everything EMAIL may see in item N, seen now."""
    person = queries.person_by_email(tx, email, default_delay_s=default_delay_s)
    queries.item_id_by_number(tx, number)  # a clear error for a missing item
    ids = [m for (m,) in tx.run(_UNSEEN_IN_ITEM, {"number": number, "email": person.email})]
    return mark_seen(tx, person_id=person.id, message_ids=ids, at=at)


# --- direct conversations and what a conversation is ---------------------------------------------

_DIRECT_BY_KEY = Prepared[tuple[int]](
    select(Conversation.id).where(Conversation.direct_key == bindparam("key"))
)
_INSERT_CONVERSATION = Prepared[tuple[int]](insert(Conversation).returning(Conversation.id))
_INSERT_MEMBER = Prepared(insert(ConversationMember))


def direct_conversation(tx: Tx, *, a: str, b: str, now: datetime) -> int:
    """The one direct conversation of two users, created on first use."""
    first = queries.person_by_email(tx, a, default_delay_s=0)
    second = queries.person_by_email(tx, b, default_delay_s=0)
    if not (first.kind is PersonKind.USER and second.kind is PersonKind.USER):
        raise PermissionDeniedError("direct conversations are between users only")
    if first.id == second.id:
        raise InputError("a direct conversation needs two different people")
    low, high = sorted((first.id, second.id))
    key = f"{low}:{high}"
    found = tx.run(_DIRECT_BY_KEY, {"key": key})
    if found:
        return found[0][0]
    ((conversation_id,),) = tx.run(
        _INSERT_CONVERSATION,
        {"kind": ConversationKind.DIRECT.value, "direct_key": key, "created_at": now},
    )
    tx.run_many(
        _INSERT_MEMBER,
        [
            {"conversation_id": conversation_id, "person_id": low},
            {"conversation_id": conversation_id, "person_id": high},
        ],
    )
    return conversation_id


_CONVERSATION_INFO = Prepared[tuple[int, str, int | None, str | None]](
    select(Conversation.id, Conversation.kind, Item.number, Item.title)
    .outerjoin(Item, Item.id == Conversation.item_id)
    .where(Conversation.id == bindparam("conversation_id"))
)


def conversation_info(
    tx: Tx, conversation_id: int, *, default_delay_s: int, viewer_id: int | None = None
) -> ConversationInfo:
    """`viewer_id`: as that person may see it; a customer only the external conversations
    they take part in (R2), any other answering as a missing one."""
    return window_reads.conversation_info(
        TxReads(tx), conversation_id, default_delay_s=default_delay_s, viewer_id=viewer_id
    )
