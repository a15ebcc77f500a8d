"""Items, as units of work: create one, read them, follow, change status or assignee.

Item numbers come from a counter locked until the creating transaction ends
(services/store/counters.py): processes creating items at once never collide on a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, true, update
from sqlalchemy.orm import aliased

from services.conversations import MAX_TITLE_CHARS, clean_line
from services.domain.model import ITEM_STATUSES, ConversationKind, PersonKind
from services.errors import InputError, quoted
from services.store import counters, queries
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import Conversation, Follower, Item, Person
from services.store.prepared import Prepared
from services.views import ChangeKind, ItemInfo, PersonInfo

__all__ = [
    "NewItem",
    "StatusChange",
    "assign_item",
    "check_status",
    "create_item",
    "follow",
    "item_info",
    "items",
    "set_status",
    "unfollow",
]


@dataclass(frozen=True, slots=True)
class NewItem:
    """What creating an item wrote: its id and number, and its two conversations."""

    id: int
    number: int
    internal_id: int
    external_id: int


_INSERT_ITEM = Prepared[tuple[int]](insert(Item).returning(Item.id))
_INSERT_CONVERSATION = Prepared[tuple[int]](insert(Conversation).returning(Conversation.id))
_INSERT_FOLLOWER = Prepared(insert(Follower))


def create_item(
    tx: Tx,
    *,
    title: str,
    followers: Sequence[PersonInfo],
    now: datetime,
    requester: PersonInfo | None = None,
) -> NewItem:
    """A new item with its two conversations and its followers."""
    clean_title = clean_line(title, field="title", limit=MAX_TITLE_CHARS)
    number = counters.take(tx, counters.ITEMS)
    ((item_id,),) = tx.run(
        _INSERT_ITEM,
        {
            "number": number,
            "title": clean_title,
            "status": "open",
            "requester_id": requester.id if requester else None,
            "created_at": now,
            "updated_at": now,
        },
    )
    # N2: the internal conversation is where the team starts: it is active from now on, so
    # the new item shows in the inbox before anyone writes.
    ((internal,),) = tx.run(
        _INSERT_CONVERSATION,
        {
            "kind": ConversationKind.INTERNAL.value,
            "item_id": item_id,
            "created_at": now,
            "last_message_at": now,
        },
    )
    ((external,),) = tx.run(
        _INSERT_CONVERSATION,
        {"kind": ConversationKind.EXTERNAL.value, "item_id": item_id, "created_at": now},
    )
    wanted = dict.fromkeys(p.id for p in followers)
    if requester is not None:
        wanted.setdefault(requester.id)
    tx.run_many(_INSERT_FOLLOWER, [{"item_id": item_id, "person_id": pid} for pid in wanted])
    record_change(tx, kind=ChangeKind.ITEM, at=now, conversation_id=internal, subject_id=item_id)
    return NewItem(id=item_id, number=number, internal_id=internal, external_id=external)


# --- reading ----------------------------------------------------------------------------------

_internal = aliased(Conversation, name="internal")
_external = aliased(Conversation, name="external")
_ITEM_COLUMNS = (
    Item.id,
    Item.number,
    Item.title,
    Item.status,
    Item.requester_id,
    Item.assignee_id,
    Item.created_at,
    _internal.id,
    _external.id,
)


def _item_rows(where: Any) -> Any:
    return (
        select(*_ITEM_COLUMNS)
        .join(
            _internal,
            and_(_internal.item_id == Item.id, _internal.kind == ConversationKind.INTERNAL.value),
        )
        .join(
            _external,
            and_(_external.item_id == Item.id, _external.kind == ConversationKind.EXTERNAL.value),
        )
        .where(where)
        .order_by(Item.number)
    )


_ITEM_BY_ID = Prepared(_item_rows(Item.id == bindparam("item_id")))
_FOLLOWERS = Prepared(
    select(Follower.item_id, *queries.PERSON_COLUMNS)
    .join(Person, Person.id == Follower.person_id)
    .where(Follower.item_id.in_(bindparam("item_ids", expanding=True)))
    .order_by(Person.id)
)
_PEOPLE = Prepared(
    select(*queries.PERSON_COLUMNS).where(Person.id.in_(bindparam("ids", expanding=True)))
)


def _infos(tx: Tx, rows: Sequence[Any], default_delay_s: int) -> list[ItemInfo]:
    """ItemInfos for item rows: their followers and requesters/assignees in two statements."""
    if not rows:
        return []
    followers: dict[int, list[PersonInfo]] = {}
    for row in tx.run(_FOLLOWERS, {"item_ids": [r[0] for r in rows]}):
        person = queries.person_info_from_row(row[1:], default_delay_s=default_delay_s)
        followers.setdefault(row[0], []).append(person)
    wanted = {pid for r in rows for pid in (r[4], r[5]) if pid is not None}
    people = {
        p.id: p
        for p in (
            queries.person_info_from_row(row, default_delay_s=default_delay_s)
            for row in (tx.run(_PEOPLE, {"ids": sorted(wanted)}) if wanted else [])
        )
    }
    return [
        ItemInfo(
            id=item_id,
            number=number,
            title=title,
            status=status,
            internal_conversation_id=internal,
            external_conversation_id=external,
            followers=tuple(followers.get(item_id, ())),
            requester=people.get(requester_id) if requester_id is not None else None,
            assignee=people.get(assignee_id) if assignee_id is not None else None,
            created_at=created_at,
        )
        for (
            item_id,
            number,
            title,
            status,
            requester_id,
            assignee_id,
            created_at,
            internal,
            external,
        ) in rows
    ]


def item_info(tx: Tx, item_id: int, *, default_delay_s: int) -> ItemInfo:
    return _infos(tx, tx.run(_ITEM_BY_ID, {"item_id": item_id}), default_delay_s)[0]


def items(tx: Tx, *, default_delay_s: int) -> list[ItemInfo]:
    return _infos(tx, list(tx.conn.execute(_item_rows(true()))), default_delay_s)


# --- following, status, assignee -----------------------------------------------------------------

_IS_FOLLOWER = Prepared[tuple[int]](
    select(Follower.item_id).where(
        Follower.item_id == bindparam("item_id"), Follower.person_id == bindparam("person_id")
    )
)
_UNFOLLOW = Prepared(
    delete(Follower).where(
        Follower.item_id == bindparam("b_item"), Follower.person_id == bindparam("b_person")
    )
)


def follow(tx: Tx, *, item_id: int, person_id: int, now: datetime) -> bool:
    """Whether `person_id` started following (False: they already did)."""
    if tx.run(_IS_FOLLOWER, {"item_id": item_id, "person_id": person_id}):
        return False
    tx.run(_INSERT_FOLLOWER, {"item_id": item_id, "person_id": person_id})
    record_change(tx, kind=ChangeKind.FOLLOW, at=now, person_id=person_id, subject_id=item_id)
    return True


def unfollow(tx: Tx, *, item_id: int, person_id: int, now: datetime) -> None:
    # Someone who does not follow the item stops following nothing: no change to tell (an
    # event would name the item to them).
    if not tx.run(_IS_FOLLOWER, {"item_id": item_id, "person_id": person_id}):
        return
    tx.run(_UNFOLLOW, {"b_item": item_id, "b_person": person_id})
    record_change(tx, kind=ChangeKind.FOLLOW, at=now, person_id=person_id, subject_id=item_id)


def check_status(status: str) -> str:
    wanted = status.strip().lower().replace("_", "-")
    if wanted not in ITEM_STATUSES:
        raise InputError(f"{quoted(status)} is not a status; one of: {', '.join(ITEM_STATUSES)}")
    return wanted


@dataclass(frozen=True, slots=True)
class StatusChange:
    item_id: int
    old: str
    new: str


_STATUS = Prepared[tuple[int, str]](
    select(Item.id, Item.status).where(Item.number == bindparam("number"))
)
_SET_STATUS = Prepared(
    update(Item)
    .where(Item.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), updated_at=bindparam("b_at"))
)


def set_status(tx: Tx, *, number: int, status: str, now: datetime) -> StatusChange:
    """Item N's status, changed if it differs; what it was and is."""
    wanted = check_status(status)
    rows = tx.run(_STATUS, {"number": number})
    if not rows:
        queries.item_id_by_number(tx, number)  # raises NotFoundError
    item_id, old = rows[0]
    if old != wanted:
        tx.run(_SET_STATUS, {"b_id": item_id, "b_status": wanted, "b_at": now})
        record_change(tx, kind=ChangeKind.ITEM, at=now, subject_id=item_id)
    return StatusChange(item_id=item_id, old=old, new=wanted)


_SET_ASSIGNEE = Prepared(
    update(Item)
    .where(Item.id == bindparam("b_id"))
    .values(assignee_id=bindparam("b_assignee"), updated_at=bindparam("b_at"))
)


def assign_item(
    tx: Tx, *, number: int, email: str | None, now: datetime, default_delay_s: int
) -> int:
    """Assign item N to a user (who then follows it), or unassign with None; its id."""
    item_id = queries.item_id_by_number(tx, number)
    assignee = None
    if email is not None:
        person = queries.person_by_email(tx, email, default_delay_s=default_delay_s)
        if person.kind is not PersonKind.USER:
            raise InputError(f"{person.email} is a customer: only users take items")
        assignee = person.id
        follow(tx, item_id=item_id, person_id=person.id, now=now)
    tx.run(_SET_ASSIGNEE, {"b_id": item_id, "b_assignee": assignee, "b_at": now})
    record_change(tx, kind=ChangeKind.ITEM, at=now, subject_id=item_id)
    return item_id
