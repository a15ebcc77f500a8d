"""Incoming & Outgoing (M6): the 72-hour email log, its detail view and its purge; and the
addresses that bounced (E7), which an administrator may clear. Units of work for `Database`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser

from sqlalchemy import Text, and_, cast, delete, or_, select, update
from sqlalchemy.orm import defer

from services.domain.model import MAX_SEARCH_CHARS, EmailStatus
from services.errors import InputError, NotFoundError, PermissionDeniedError
from services.store import queries
from services.store.changes import record_change
from services.store.database import Tx
from services.store.email_bodies import body_of, store_bodies
from services.store.models import Delivery, Email, MailBounce
from services.views import BounceInfo, ChangeKind, EmailLogEntry

__all__ = [
    "LOG_WINDOW",
    "PURGE_EVERY",
    "EmailDetail",
    "bounced_addresses",
    "check_filters",
    "clear_bounces",
    "email_detail",
    "email_raw",
    "emails",
    "log_email",
    "purge_log",
]

LOG_WINDOW = timedelta(hours=72)  # M6
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class EmailDetail:
    """M6: one log entry in full: its headers, its plain-text body, the server's reply."""

    entry: EmailLogEntry
    headers: tuple[tuple[str, str], ...]
    body: str


_PENDING = (EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING)


def check_filters(*, status: str | None, direction: str | None, search: str | None) -> None:
    """Refuse a filter the log could never match, in one line."""
    if status and status not in set(EmailStatus):
        raise InputError(f"{status!r:.60} is not a status; one of: {', '.join(EmailStatus)}")
    if direction and direction not in ("in", "out"):
        raise InputError(f"{direction!r:.60} is not a direction; in or out")
    if search and len(search) > MAX_SEARCH_CHARS:
        raise InputError(f"a search is at most {MAX_SEARCH_CHARS} characters")


def emails(
    tx: Tx,
    *,
    since: datetime,
    status: str | None,
    direction: str | None,
    search: str | None,
    limit: int,
    offset: int,
) -> list[EmailLogEntry]:
    """M6: the log since `since` (and everything still pending), newest first, filtered."""
    check_filters(status=status, direction=direction, search=search)
    # The list never shows bodies: leave the large columns in the database.
    stmt = (
        select(Email)
        .options(defer(Email.body_text))
        .where(or_(Email.created_at >= since, Email.status.in_(_PENDING)))
    )
    if status:
        stmt = stmt.where(Email.status == status)
    if direction:
        stmt = stmt.where(Email.direction == direction)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        columns = (Email.subject, Email.from_addr, cast(Email.to_addrs, Text))
        # SQLite's LIKE is already case-blind (ASCII) and lower() on every row costs half
        # the scan of a rare term over 100,000 entries; PostgreSQL needs ILIKE.
        if tx.is_postgres:
            stmt = stmt.where(or_(*(c.ilike(like, escape="\\") for c in columns)))
        else:
            stmt = stmt.where(or_(*(c.like(like, escape="\\") for c in columns)))
    stmt = stmt.order_by(Email.created_at.desc(), Email.id.desc()).limit(limit).offset(offset)
    return [_log_entry(e) for e in tx.session.scalars(stmt)]


def _log_entry(e: Email) -> EmailLogEntry:
    return EmailLogEntry(
        id=e.id,
        direction=e.direction,
        kind=e.kind,
        status=e.status,
        from_addr=e.from_addr,
        to_addrs=tuple(e.to_addrs),
        subject=e.subject,
        message_id=e.message_id,
        reason=e.reason,
        reply=e.reply,
        action=e.action,
        item_number=e.item_number,
        attempts=e.attempts,
        next_attempt_at=e.next_attempt_at,
        created_at=e.created_at,
        sent_at=e.sent_at,
    )


def email_raw(tx: Tx, email_id: int) -> bytes | None:
    return body_of(tx, email_id)


def log_email(tx: Tx, /, *, raw: bytes | None, **columns: object) -> None:
    """Log an email sent outside the outbox (the test email): its bytes and its `emails`
    columns."""
    email = Email(**columns)
    tx.session.add(email)
    tx.session.flush()
    store_bodies(tx, [(email.id, raw)])
    at = columns["created_at"]
    assert isinstance(at, datetime)
    record_change(tx, kind=ChangeKind.EMAIL, at=at)


def purge_log(tx: Tx, *, before: datetime) -> int:
    """Remove log entries older than `before`; never a pending one (M6)."""
    old = and_(Email.created_at < before, Email.status.not_in(_PENDING))
    tx.conn.execute(
        update(Delivery)
        .where(Delivery.email_id.in_(select(Email.id).where(old)))
        .values(email_id=None)
    )
    result = tx.conn.execute(delete(Email).where(old))
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class _Stored:
    entry: EmailLogEntry
    raw: bytes | None
    body: str


def _stored(tx: Tx, email_id: int) -> _Stored:
    email = tx.session.get(Email, email_id)
    if email is None:
        raise NotFoundError(f"no email {email_id}")
    return _Stored(entry=_log_entry(email), raw=body_of(tx, email_id), body=email.body_text)


def email_detail(tx: Tx, email_id: int) -> EmailDetail:
    """M6: one log entry with its headers, its plain-text body and the server's reply."""
    stored = _stored(tx, email_id)
    body = stored.body
    headers: tuple[tuple[str, str], ...] = ()
    if stored.raw:
        parsed = BytesParser(policy=policy.default).parsebytes(stored.raw)
        headers = tuple((k, str(v)) for k, v in parsed.items())
        if not body:
            part = parsed.get_body(preferencelist=("plain", "html"))
            body = str(part.get_content()) if part is not None else ""
    return EmailDetail(entry=stored.entry, headers=headers, body=body)


def bounced_addresses(tx: Tx, *, blocked_only: bool) -> list[BounceInfo]:
    """E7: every address a delivery report spoke of, blocked ones first."""
    stmt = select(MailBounce).order_by(MailBounce.blocked_at.is_(None), MailBounce.last_at.desc())
    if blocked_only:
        stmt = stmt.where(MailBounce.blocked_at.is_not(None))
    return [
        BounceInfo(
            address=b.address,
            hard_bounces=b.hard_bounces,
            soft_bounces=b.soft_bounces,
            last_status=b.last_status,
            last_reason=b.last_reason,
            last_at=b.last_at,
            blocked_at=b.blocked_at,
        )
        for b in tx.session.scalars(stmt)
    ]


def clear_bounces(tx: Tx, *, address: str, acting: str, now: datetime) -> str:
    """E7, administrators only: forget an address's bounces, so emails go to it again.
    Returns who did it (for the log)."""
    wanted = address.strip().lower()
    actor = queries.person_by_email(tx, acting, default_delay_s=0)
    if not actor.is_admin:
        raise PermissionDeniedError("only an administrator may clear an address's bounces")
    bounce = tx.session.get(MailBounce, wanted)
    if bounce is None:
        raise NotFoundError(f"no bounces recorded for {wanted}")
    tx.session.delete(bounce)
    record_change(tx, kind=ChangeKind.EMAIL, at=now)
    return actor.email
