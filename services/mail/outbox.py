"""The outbox worker: claims queued emails, sends them over one SMTP connection, records each
outcome (E6, E7, T2).

Crash safety (E7): a row is claimed and marked `sending` in its own committed transaction before
any byte leaves, and marked `sent` right after the server's 250. A process killed in between
leaves a `sending` row whose claim runs out (or whose owner is visibly dead on this host); it is
then sent again with the bytes fixed at queue time, so the same Message-ID. Only a drop after the
final dot and before the 250 can duplicate an email, which no SMTP client can rule out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clock import Clock
from services.domain.model import EmailStatus
from services.domain.schedule import (
    REASON_EMAILS_OFF,
    REASON_SEEN,
    SmtpVerdict,
    retry_delay,
    should_give_up,
)
from services.mail.smtp import Outcome, Outgoing, SmtpSender, SmtpSettings
from services.store import queries
from services.store.models import Delivery, Email, Message, Person

__all__ = ["OutboxWorker", "instance_id"]

log = logging.getLogger(__name__)

BATCH = 100
_SENDABLE = (EmailStatus.QUEUED, EmailStatus.RETRYING, EmailStatus.SENDING)


def instance_id() -> str:
    """host:pid:nonce, so a claim names its owner and a dead owner on this host is noticed."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(claimed_by: str | None) -> bool:
    if not claimed_by:
        return False
    host, _, rest = claimed_by.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or os.name != "posix":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        smtp_settings: Callable[[], Awaitable[SmtpSettings | None]],
        lease: Callable[[], timedelta],
        on_change: Callable[[], None],
        owner: str | None = None,
        max_sleep_s: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._smtp_settings = smtp_settings
        self._lease = lease
        self._on_change = on_change
        self.owner = owner or instance_id()
        self._max_sleep_s = max_sleep_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._batch_no = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deskbell-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        sender: SmtpSender | None = None
        try:
            while True:
                try:
                    sender, next_at = await self._cycle(sender)
                except Exception:
                    log.exception("the outbox failed; retrying shortly")
                    next_at = None
                delay = self._max_sleep_s
                if next_at is not None:
                    delay = min(delay, max(0.0, (next_at - self._clock.now()).total_seconds()))
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                self._wake.clear()
        finally:
            if sender is not None:
                with contextlib.suppress(Exception):
                    await sender.close()

    async def _cycle(self, sender: SmtpSender | None) -> tuple[SmtpSender | None, datetime | None]:
        settings = await self._smtp_settings()
        if settings is None:
            return None, None  # not set up yet: emails wait, queued
        if sender is None or sender.settings != settings:
            if sender is not None:
                await sender.close()
            sender = SmtpSender(settings=settings)
        sent_any = False
        while batch := await self.claim():
            sent_any = True
            await self.send_batch(sender, batch)
        if not sent_any and sender.connected:
            await sender.close()  # idle: do not hold a connection open between bursts
        return sender, await self.next_attempt_at()

    async def flush(self) -> int:
        """Send everything due now on one connection and return how many were tried."""
        settings = await self._smtp_settings()
        if settings is None:
            return 0
        tried = 0
        async with SmtpSender(settings=settings) as sender:
            while batch := await self.claim():
                tried += len(batch)
                await self.send_batch(sender, batch)
        return tried

    async def next_attempt_at(self) -> datetime | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(func.min(Email.next_attempt_at)).where(
                    Email.direction == "out",
                    Email.status.in_((EmailStatus.QUEUED, EmailStatus.RETRYING)),
                )
            )

    async def claim(self, *, limit: int = BATCH) -> list[Email]:
        """Take up to `limit` due emails for this process (T2: row claims, one sender each)."""
        now = self._clock.now()
        self._batch_no += 1
        token = f"{self.owner}:{self._batch_no}"
        free = or_(Email.claimed_until.is_(None), Email.claimed_until < now)
        due = and_(
            Email.direction == "out",
            Email.status.in_(_SENDABLE),
            or_(Email.next_attempt_at.is_(None), Email.next_attempt_at <= now),
        )
        async with self._sessions.begin() as session:
            stale = await session.execute(
                select(Email.id, Email.claimed_by).where(
                    due, Email.status == EmailStatus.SENDING, Email.claimed_until >= now
                )
            )
            dead = [i for i, owner in stale if _owner_dead(owner)]
            ids = (
                (
                    await session.execute(
                        select(Email.id).where(due, free).order_by(Email.id).limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            ids = [*dead, *ids][:limit]
            if not ids:
                return []
            await session.execute(
                update(Email)
                .where(Email.id.in_(ids), or_(free, Email.id.in_(dead)))
                .values(
                    claimed_by=token,
                    claimed_until=now + self._lease(),
                    status=EmailStatus.SENDING,
                    attempts=Email.attempts + 1,
                )
            )
            claimed = (
                (
                    await session.execute(
                        select(Email).where(Email.claimed_by == token).order_by(Email.id)
                    )
                )
                .scalars()
                .all()
            )
        return list(claimed)

    async def send_batch(self, sender: SmtpSender, batch: Sequence[Email]) -> None:
        left_out = await self._recheck(batch)
        for email in batch:
            if email.id in left_out:
                await self._finish(email, status=EmailStatus.SUPPRESSED, reason=left_out[email.id])
                continue
            if email.raw is None:
                await self._finish(email, status=EmailStatus.FAILED, reason="nothing to send")
                continue
            outcome = await sender.send(
                Outgoing(
                    key=email.id,
                    sender=email.from_addr,
                    recipients=tuple(email.to_addrs),
                    data=email.raw,
                )
            )
            await self._record(email, outcome)

    async def _recheck(self, batch: Sequence[Email]) -> dict[int, str]:
        """E3 at the last moment: an email whose every message was seen meanwhile, or whose
        recipient turned emails off, is left out."""
        ids = [e.id for e in batch if e.kind == "notification"]
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    Delivery.email_id,
                    func.count(),
                    func.count(Delivery.seen_at),
                    func.count(Message.deleted_at),
                )
                .join(Message, Message.id == Delivery.message_id)
                .where(Delivery.email_id.in_(ids))
                .group_by(Delivery.email_id)
            )
            seen = {eid: n == s + d for eid, n, s, d in rows}
            off = set(
                (
                    await session.execute(
                        select(Email.id)
                        .join(Person, Person.id == Email.recipient_id)
                        .where(Email.id.in_(ids), Person.notify_email.is_(False))
                    )
                )
                .scalars()
                .all()
            )
        left: dict[int, str] = {}
        for email_id in ids:
            if email_id in off:
                left[email_id] = REASON_EMAILS_OFF
            elif seen.get(email_id):
                left[email_id] = REASON_SEEN
        return left

    async def _record(self, email: Email, outcome: Outcome) -> None:
        now = self._clock.now()
        if outcome.verdict is SmtpVerdict.SENT:
            await self._finish(email, status=EmailStatus.SENT, reply=outcome.reply, sent_at=now)
        elif outcome.verdict is SmtpVerdict.FAILED:
            await self._finish(email, status=EmailStatus.FAILED, reply=outcome.reply)
        elif should_give_up(first_queued_at=email.created_at, now=now):
            await self._finish(
                email,
                status=EmailStatus.FAILED,
                reply=outcome.reply,
                reason="gave up after 5 days of retries",
            )
        else:
            # E7: a recipient the server already accepted is never sent the email again.
            remaining = list(outcome.retry_to) if outcome.sent_to else None
            await self._finish(
                email,
                status=EmailStatus.RETRYING,
                reply=outcome.reply,
                next_attempt_at=now + retry_delay(email.attempts),
                to_addrs=remaining,
                reason=f"accepted for {', '.join(outcome.sent_to)}" if remaining else None,
            )

    async def _finish(
        self,
        email: Email,
        *,
        status: EmailStatus,
        reply: str | None = None,
        reason: str | None = None,
        sent_at: datetime | None = None,
        next_attempt_at: datetime | None = None,
        to_addrs: list[str] | None = None,
    ) -> None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Email)
                .where(Email.id == email.id, Email.claimed_by == email.claimed_by)
                .values(
                    status=status,
                    reply=reply if reply is not None else Email.reply,
                    reason=reason,
                    sent_at=sent_at,
                    next_attempt_at=next_attempt_at,
                    claimed_by=None,
                    claimed_until=None,
                    to_addrs=to_addrs if to_addrs is not None else Email.to_addrs,
                )
            )
            if not getattr(result, "rowcount", 1):
                log.warning("email %s was taken over by another process meanwhile", email.id)
            if status is EmailStatus.SUPPRESSED:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.email_id == email.id)
                    .values(state="suppressed", reason=reason)
                )
            queries.add_change(session, kind="email", at=now, conversation_id=email.conversation_id)
        self._on_change()
