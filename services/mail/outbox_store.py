"""The outbox's units of work: claims, the next deadline, the last-moment re-check, outcomes.

Each runs whole in the database worker (services/store/database.py), one thread hop, on
`Prepared` statements. Claims are one atomic `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
SKIP LOCKED) RETURNING` that re-checks the row is still due and free (T2): on PostgreSQL two
processes never take the same row; on SQLite the write lock serialises claims the same way.

Leases run on the database's clock (services/mail/leases.py, issue 9). Due times
(`next_attempt_at`) stay on the service's clock, as the rest of the schedule does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from services.domain.model import EmailStatus
from services.mail.blocked import blocked_reasons
from services.mail.leases import as_local, db_later, db_now, lease_params, owner_dead
from services.store.changes import record_change
from services.store.database import Tx
from services.store.email_bodies import bodies_of
from services.store.models import Delivery, Email, Message, Person, UtcDateTime
from services.store.prepared import Prepared
from services.views import ChangeKind

__all__ = [
    "Claimed",
    "Extension",
    "Finished",
    "Recheck",
    "Recorded",
    "Takeable",
    "Writes",
    "claim",
    "next_takeable",
    "recheck",
    "record",
    "takeable",
]

_SENDABLE = (EmailStatus.QUEUED.value, EmailStatus.RETRYING.value, EmailStatus.SENDING.value)

_emails = cast(Table, Email.__table__)
_deliveries = cast(Table, Delivery.__table__)
_messages = cast(Table, Message.__table__)
_people = cast(Table, Person.__table__)


_DB_NOW = db_now()
_NOW = bindparam("b_now", type_=UtcDateTime())
_FREE = or_(_emails.c.claimed_until.is_(None), _emails.c.claimed_until <= _DB_NOW)
_DUE = and_(
    _emails.c.direction == "out",
    _emails.c.status.in_(_SENDABLE),
    or_(
        _emails.c.next_attempt_at.is_(None),
        _emails.c.next_attempt_at <= _NOW,
    ),
)
_CLAIMED_COLUMNS = (
    _emails.c.id,
    _emails.c.uid,
    _emails.c.kind,
    _emails.c.message_id,
    _emails.c.from_addr,
    _emails.c.to_addrs,
    _emails.c.conversation_id,
    _emails.c.reply,
    _emails.c.attempts,
    _emails.c.created_at,
    _emails.c.claimed_by,
    _emails.c.claimed_until,
)
_TAKE = {
    "claimed_by": bindparam("b_token"),
    "claimed_until": db_later(),
    "status": EmailStatus.SENDING.value,
    "attempts": _emails.c.attempts + 1,
}


@dataclass(frozen=True, slots=True)
class Claimed:
    """An email this process holds the claim on, with what sending it needs."""

    id: int
    uid: str
    kind: str
    message_id: str | None
    from_addr: str
    to_addrs: tuple[str, ...]
    raw: bytes | None
    conversation_id: int | None
    reply: str | None
    attempts: int
    created_at: datetime
    claimed_by: str
    claimed_until: datetime  # on the database's clock


def _claimed(row: Sequence[Any], bodies: dict[int, bytes]) -> Claimed:
    """A claimed row (`_CLAIMED_COLUMNS`) with its bytes, read apart (`EmailBody`)."""
    values = list(row)
    values[5] = tuple(values[5] or ())
    values.insert(6, bodies.get(values[0]))
    return Claimed(*values)


# Any row free and due now? A read: no write lock is taken when nothing is due.
_ANY_FREE = Prepared[tuple[int]](select(_emails.c.id).where(_DUE, _FREE).limit(1))
# Rows held by someone else: a claim whose owner is visibly dead on this host is taken over.
_HELD = Prepared[tuple[int, str | None]](
    select(_emails.c.id, _emails.c.claimed_by).where(
        _DUE, _emails.c.status == EmailStatus.SENDING.value, ~_FREE
    )
)
_CLAIM = Prepared[tuple[Any, ...]](
    update(_emails)
    .where(
        _emails.c.id.in_(
            select(_emails.c.id)
            .where(_DUE, _FREE)
            .order_by(_emails.c.id)
            .limit(bindparam("b_limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        ),
        _DUE,  # the re-check: still due and free when the row is locked
        _FREE,
    )
    .values(_TAKE)
    .returning(*_CLAIMED_COLUMNS)
)
_TAKE_OVER = Prepared[tuple[Any, ...]](
    update(_emails)
    .where(_emails.c.id == bindparam("b_id"), _emails.c.claimed_by == bindparam("b_old"), _DUE)
    .values(_TAKE)
    .returning(*_CLAIMED_COLUMNS)
)


@dataclass(frozen=True, slots=True)
class Takeable:
    """What a claim would find: any free due row, and held rows whose owner is dead."""

    free: bool
    dead: tuple[tuple[int, str], ...]


def takeable(tx: Tx, now: datetime) -> Takeable:
    params = {"b_now": now}
    free = bool(tx.run(_ANY_FREE, params))
    dead = tuple((i, owner) for i, owner in tx.run(_HELD, params) if owner and owner_dead(owner))
    return Takeable(free=free, dead=dead)


def claim(
    tx: Tx,
    *,
    token: str,
    now: datetime,
    lease_s: float,
    limit: int,
    dead: Sequence[tuple[int, str]],
) -> list[Claimed]:
    """Take up to `limit` due emails for `token`: those of dead owners first, then free ones
    in id order, each marked `sending` with a lease on the database's clock."""
    params: dict[str, Any] = {"b_token": token, **lease_params(now, lease_s)}
    rows: list[tuple[Any, ...]] = []
    for email_id, owner in dead[:limit]:
        rows.extend(tx.run(_TAKE_OVER, {**params, "b_id": email_id, "b_old": owner}))
    if len(rows) < limit:
        rows.extend(tx.run(_CLAIM, {**params, "b_limit": limit - len(rows)}))
    bodies = bodies_of(tx, [r[0] for r in rows])
    return sorted((_claimed(r, bodies) for r in rows), key=lambda c: c.id)


# When can a claim next take an email: its retry time, or when the claim on it runs out,
# whichever is later, on the service's clock.
_CLAIM_ENDS = as_local(_emails.c.claimed_until)
_NEXT = Prepared[tuple[datetime | None]](
    select(
        func.min(
            case(
                (_emails.c.claimed_until.is_(None), _emails.c.next_attempt_at),
                (_emails.c.next_attempt_at.is_(None), _CLAIM_ENDS),
                (_emails.c.next_attempt_at < _CLAIM_ENDS, _CLAIM_ENDS),
                else_=_emails.c.next_attempt_at,
            )
        )
    ).where(_emails.c.direction == "out", _emails.c.status.in_(_SENDABLE))
)


def next_takeable(tx: Tx, now: datetime) -> datetime | None:
    [(at,)] = tx.run(_NEXT, {"b_now": now})
    return at


@dataclass(frozen=True, slots=True)
class Recheck:
    """At the last moment: notification emails whose messages were all seen (or deleted),
    emails to people who turned emails off, and the blocked addresses with their reasons."""

    seen: frozenset[int]
    off: frozenset[int]
    blocked: dict[str, str]


_SEEN = Prepared[tuple[int, int, int, int]](
    select(
        _deliveries.c.email_id,
        func.count(),
        func.count(_deliveries.c.seen_at),
        func.count(_messages.c.deleted_at),
    )
    .join(_messages, _messages.c.id == _deliveries.c.message_id)
    .where(_deliveries.c.email_id.in_(bindparam("b_ids", expanding=True)))
    .group_by(_deliveries.c.email_id)
)
_OFF = Prepared[tuple[int]](
    select(_emails.c.id)
    .join(_people, _people.c.id == _emails.c.recipient_id)
    .where(
        _emails.c.id.in_(bindparam("b_ids", expanding=True)),
        _people.c.notify_email.is_(False),
    )
)


def recheck(tx: Tx, notification_ids: Sequence[int], addresses: Iterable[str]) -> Recheck:
    blocked = blocked_reasons(tx, addresses)
    if not notification_ids:
        return Recheck(seen=frozenset(), off=frozenset(), blocked=blocked)
    ids = list(notification_ids)
    seen = frozenset(e for e, n, s, d in tx.run(_SEEN, {"b_ids": ids}) if n == s + d)
    off = frozenset(e for (e,) in tx.run(_OFF, {"b_ids": ids}))
    return Recheck(seen=seen, off=off, blocked=blocked)


@dataclass(frozen=True, slots=True)
class Finished:
    """How one claimed email ends this attempt, as written."""

    id: int
    claimed_by: str
    status: str
    reply: str | None
    reason: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None
    to_addrs: tuple[str, ...]
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class Extension:
    id: int
    claimed_by: str
    span_s: float


@dataclass(frozen=True, slots=True)
class Writes:
    """One commit of the outbox's lane: outcomes, claim extensions, releases, change rows."""

    now: datetime
    outcomes: tuple[Finished, ...] = ()
    extensions: tuple[Extension, ...] = ()
    releases: tuple[tuple[int, str], ...] = ()
    conversations: frozenset[int | None] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Recorded:
    lost: tuple[int, ...]  # outcomes not written: another process had taken the email
    kept: frozenset[int]  # extensions written: the claim is still ours


_OURS = and_(_emails.c.id == bindparam("b_id"), _emails.c.claimed_by == bindparam("b_claimed_by"))
# The claim check keeps a row another process took over from being overwritten.
_RECORD_OUTCOME = Prepared[tuple[int]](
    update(_emails)
    .where(_OURS)
    .values(
        status=bindparam("b_status"),
        reply=bindparam("b_reply"),
        reason=bindparam("b_reason"),
        sent_at=bindparam("b_sent_at", type_=_emails.c.sent_at.type),
        next_attempt_at=bindparam("b_next_attempt_at", type_=_emails.c.next_attempt_at.type),
        to_addrs=bindparam("b_to_addrs", type_=_emails.c.to_addrs.type),
        claimed_by=None,
        claimed_until=None,
    )
    .returning(_emails.c.id)
)
_EXTEND_CLAIM = Prepared[tuple[int]](
    update(_emails).where(_OURS).values(claimed_until=db_later()).returning(_emails.c.id)
)
_RELEASE_CLAIM = Prepared(update(_emails).where(_OURS).values(claimed_by=None, claimed_until=None))
_SUPPRESS_DELIVERIES = Prepared(
    update(_deliveries)
    .where(_deliveries.c.email_id == bindparam("b_email_id"))
    .values(state="suppressed", reason=bindparam("b_reason"))
)


def record(tx: Tx, writes: Writes) -> Recorded:
    """Write one lane commit; what did not land because the email is no longer ours."""
    lost: list[int] = []
    for o in writes.outcomes:
        row = {
            "b_id": o.id,
            "b_claimed_by": o.claimed_by,
            "b_status": o.status,
            "b_reply": o.reply,
            "b_reason": o.reason,
            "b_sent_at": o.sent_at,
            "b_next_attempt_at": o.next_attempt_at,
            "b_to_addrs": list(o.to_addrs),
        }
        if not tx.run(_RECORD_OUTCOME, row):
            lost.append(o.id)
        elif o.suppressed:
            tx.run(_SUPPRESS_DELIVERIES, {"b_email_id": o.id, "b_reason": o.reason})
    kept = set()
    for ext in writes.extensions:
        params = {
            "b_id": ext.id,
            "b_claimed_by": ext.claimed_by,
            **lease_params(writes.now, ext.span_s),
        }
        if tx.run(_EXTEND_CLAIM, params):
            kept.add(ext.id)
    tx.run_many(_RELEASE_CLAIM, [{"b_id": i, "b_claimed_by": by} for i, by in writes.releases])
    for conversation_id in writes.conversations:
        record_change(tx, kind=ChangeKind.EMAIL, at=writes.now, conversation_id=conversation_id)
    return Recorded(lost=tuple(lost), kept=frozenset(kept))
