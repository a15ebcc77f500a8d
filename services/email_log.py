"""Incoming & Outgoing (M6): the 72-hour email log, its detail view and its purge; and the
addresses that bounced (E7), which an administrator may clear. A part of `Service`
(services/api.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesParser

from sqlalchemy import Text, and_, cast, delete, or_, select, update
from sqlalchemy.orm import defer

from services.clock import Clock
from services.domain.model import MAX_SEARCH_CHARS, EmailStatus
from services.errors import InputError, NotFoundError, PermissionDeniedError
from services.store import queries
from services.store.db import Store, StoreSessions
from services.store.models import Delivery, Email, MailBounce
from services.views import BounceInfo, ChangeKind, Changes, EmailLogEntry

__all__ = ["LOG_WINDOW", "PURGE_EVERY", "EmailDetail", "EmailLog"]

log = logging.getLogger(__name__)

LOG_WINDOW = timedelta(hours=72)  # M6
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class EmailDetail:
    """M6: one log entry in full: its headers, its plain-text body, the server's reply."""

    entry: EmailLogEntry
    headers: tuple[tuple[str, str], ...]
    body: str


class EmailLog:
    """The log's reads and purge; `Service` provides the store, sessions and clock."""

    store: Store
    clock: Clock
    _sessions: StoreSessions

    async def emails(
        self,
        *,
        status: str | None = None,
        direction: str | None = None,
        search: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[EmailLogEntry]:
        """M6: the last 72 hours, newest first, optionally filtered; one page per call."""
        if status and status not in set(EmailStatus):
            raise InputError(f"{status!r:.60} is not a status; one of: {', '.join(EmailStatus)}")
        if direction and direction not in ("in", "out"):
            raise InputError(f"{direction!r:.60} is not a direction; in or out")
        if search and len(search) > MAX_SEARCH_CHARS:
            raise InputError(f"a search is at most {MAX_SEARCH_CHARS} characters")
        since = self.clock.now() - LOG_WINDOW
        # The list never shows bodies: leave the large columns in the database.
        stmt = (
            select(Email)
            .options(defer(Email.raw), defer(Email.body_text))
            .where(
                or_(
                    Email.created_at >= since,
                    Email.status.in_(
                        [EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING]
                    ),
                )
            )
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
            if self.store.is_sqlite:
                stmt = stmt.where(or_(*(c.like(like, escape="\\") for c in columns)))
            else:
                stmt = stmt.where(or_(*(c.ilike(like, escape="\\") for c in columns)))
        stmt = stmt.order_by(Email.created_at.desc(), Email.id.desc()).limit(limit).offset(offset)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [self._log_entry(e) for e in rows]

    @staticmethod
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

    async def email_raw(self, email_id: int) -> bytes | None:
        async with self._sessions() as session:
            email = await session.get(Email, email_id)
            return email.raw if email else None

    async def purge_log(self) -> int:
        """Remove log entries older than 72 hours; never a pending one (M6)."""
        cutoff = self.clock.now() - LOG_WINDOW
        async with self._sessions.begin() as session:
            pending = [EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING]
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.email_id.in_(
                        select(Email.id).where(
                            Email.created_at < cutoff, Email.status.not_in(pending)
                        )
                    )
                )
                .values(email_id=None)
            )
            result = await session.execute(
                delete(Email).where(and_(Email.created_at < cutoff, Email.status.not_in(pending)))
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def email_detail(self, email_id: int) -> EmailDetail:
        """M6: one log entry with its headers, its plain-text body and the server's reply."""
        async with self._sessions() as session:
            email = await session.get(Email, email_id)
            if email is None:
                raise NotFoundError(f"no email {email_id}")
            entry = self._log_entry(email)
            raw = email.raw
            body = email.body_text
        headers: tuple[tuple[str, str], ...] = ()
        if raw:
            parsed = BytesParser(policy=policy.default).parsebytes(raw)
            headers = tuple((k, str(v)) for k, v in parsed.items())
            if not body:
                part = parsed.get_body(preferencelist=("plain", "html"))
                body = str(part.get_content()) if part is not None else ""
        return EmailDetail(entry=entry, headers=headers, body=body)

    async def bounced_addresses(self, *, blocked_only: bool = False) -> list[BounceInfo]:
        """E7: every address a delivery report spoke of, blocked ones first."""
        stmt = select(MailBounce).order_by(
            MailBounce.blocked_at.is_(None), MailBounce.last_at.desc()
        )
        if blocked_only:
            stmt = stmt.where(MailBounce.blocked_at.is_not(None))
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
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
            for b in rows
        ]

    async def clear_bounces(self, *, address: str, acting: str) -> Changes:
        """E7, administrators only: forget an address's bounces, so emails go to it again."""
        wanted = address.strip().lower()
        now = self.clock.now()
        async with self._sessions.begin() as session:
            actor = await queries.person_by_email(session, acting)
            if not actor.is_admin:
                raise PermissionDeniedError("only an administrator may clear an address's bounces")
            bounce = await session.get(MailBounce, wanted)
            if bounce is None:
                raise NotFoundError(f"no bounces recorded for {wanted}")
            await session.delete(bounce)
            queries.add_change(session, kind=ChangeKind.EMAIL, at=now)
        log.info("%s cleared the bounces of %s", actor.email, wanted)
        return Changes(emails=True)
