"""The outbox worker: claims queued emails, sends them over one SMTP connection, records each
outcome (E6, E7, T2).

Crash safety (E7): a batch of rows is claimed and marked `sending` in its own committed
transaction before any byte leaves. The claim of a row not yet in flight runs out after
`lease` (another process may then take it); before each SMTP step of the email in flight its
claim is extended past that step's timeout, so it is never taken over while in flight, and an
email whose claim was lost meanwhile is not sent by its old owner. Each acceptance (the
server's 250) is committed before the next email's DATA, so at most one accepted email is
ever unrecorded. A process killed mid-send leaves a `sending` row whose claim runs out (or
whose owner is visibly dead on this host); it is then sent again with the bytes fixed at
queue time, so the same Message-ID. Only a crash between a 250 and the commit that follows it
can duplicate an email, as no SMTP client can rule out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, Update, and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from services.clock import Clock
from services.domain.model import EmailStatus
from services.domain.schedule import (
    REASON_EMAILS_OFF,
    REASON_SEEN,
    SmtpVerdict,
    retry_delay,
    should_give_up,
)
from services.domain.verp import bounce_address
from services.due_loop import DueLoop
from services.errors import DeskbellError
from services.mail.blocked import blocked_reasons
from services.mail.smtp import (
    Outcome,
    Outgoing,
    SmtpSender,
    SmtpSettings,
    SmtpTimeouts,
)
from services.store import queries
from services.store.db import StoreSessions
from services.store.models import Delivery, Email, Message, Person
from services.views import ChangeKind

__all__ = ["ClaimLostError", "OutboxWorker", "instance_id"]

log = logging.getLogger(__name__)

BATCH = 100
_T = TypeVar("_T")
# Clocks of several hosts and a commit's latency: a claim outlasts its step by this much.
CLAIM_MARGIN = timedelta(seconds=60)
# Stopping lets the email in flight finish this long, then records what finished regardless.
STOP_GRACE_S = 10.0
RECORD_ON_STOP_S = 30.0
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


class ClaimLostError(Exception):
    """Another process took this email over (our claim had run out before it was in flight)."""


class OutboxWorker:
    def __init__(
        self,
        sessions: StoreSessions,
        *,
        engine: AsyncEngine,
        clock: Clock,
        smtp_settings: Callable[[], Awaitable[SmtpSettings | None]],
        lease: Callable[[], timedelta],
        bounce_key: Callable[[], bytes],
        on_change: Callable[[], None],
        owner: str | None = None,
    ) -> None:
        """`bounce_key` signs each email's bounce address (the envelope sender, E7)."""
        self._sessions = sessions
        self._engine = engine
        self._bounce_key = bounce_key
        self._clock = clock
        self._smtp_settings = smtp_settings
        self._lease = lease
        self._on_change = on_change
        self.owner = owner or instance_id()
        self._batch_no = 0
        self._sender: SmtpSender | None = None
        self._health = _SmtpHealth()
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = DueLoop(
            name="outbox",
            clock=clock,
            step=self._step,
            on_stop=self._close_sender,
        )

    def wake(self) -> None:
        self._loop.wake()

    def start(self) -> None:
        self._stopping = False
        self._loop.start()

    async def stop(self) -> None:
        """Start no new email; let the one in flight finish and its outcome be recorded
        (within `STOP_GRACE_S`), then stop. What the server accepted is recorded (E7)."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE_S):
                await self._idle.wait()
        await self._loop.stop()

    async def _step(self) -> datetime | None:
        self._sender, next_at = await self._cycle(self._sender)
        return next_at

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.close()

    async def _settings(self) -> SmtpSettings | None:
        """The SMTP settings; None (and logged once) while they cannot be used."""
        try:
            return await self._smtp_settings()
        except DeskbellError as exc:
            self._health.note(f"the SMTP settings cannot be used: {exc}")
            return None

    async def _cycle(self, sender: SmtpSender | None) -> tuple[SmtpSender | None, datetime | None]:
        settings = await self._settings()
        if settings is None:
            return None, None  # not set up yet: emails wait, queued
        if sender is None or sender.settings != settings:
            if sender is not None:
                await sender.close()
            sender = SmtpSender(settings=settings)
        sent_any = False
        while not self._stopping and (batch := await self.claim()):
            sent_any = True
            await self.send_batch(sender, batch)
        if not sent_any and sender.connected:
            await sender.close()  # idle: do not hold a connection open between bursts
        return sender, await self.next_attempt_at()

    async def flush(self) -> int:
        """Send everything due now on one connection and return how many were tried."""
        settings = await self._settings()
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
        """Send a claimed batch in order, one email in flight at a time (E7)."""
        self._idle.clear()
        left_out, blocked = await self._recheck(batch)
        key = self._bounce_key()
        recorder = _Recorder(self._sessions, engine=self._engine, clock=self._clock)
        timeouts = sender.settings.timeouts
        claims = {
            e.id: _Claim(
                e,
                recorder,
                clock=self._clock,
                lease=self._lease(),
                timeouts=timeouts,
                recipients=len(e.to_addrs),
            )
            for e in batch
            if e.id not in left_out and e.raw is not None
        }
        upcoming = [e.id for e in batch if e.id in claims]
        try:
            for index, email in enumerate(batch):
                if self._stopping:
                    recorder.release(batch[index:])  # not started: free for the next sender
                    break
                if email.id in left_out:
                    recorder.add(
                        email, _Finish(status=EmailStatus.SUPPRESSED, reason=left_out[email.id])
                    )
                    continue
                if email.raw is None:
                    recorder.add(
                        email, _Finish(status=EmailStatus.FAILED, reason="nothing to send")
                    )
                    continue
                claim = claims[email.id]
                after = upcoming.index(email.id) + 1
                if after < len(upcoming):
                    claims[upcoming[after]].ahead()  # rides on this email's record
                to = tuple(a for a in email.to_addrs if a.lower() not in blocked)
                try:
                    outcome = await sender.send(
                        Outgoing(
                            key=email.id,
                            sender=bounce_address(
                                from_addr=email.from_addr,
                                key=key,
                                email_id=email.id,
                                email_uid=email.uid,
                            ),
                            recipients=to,
                            data=email.raw,
                        ),
                        guard=claim.before,
                    )
                except ClaimLostError:
                    log.info("email %d was taken over by another process; not sending it", email.id)
                    continue
                self._health.note(sender.trouble, sender.settings)
                recorder.attempted(email, self._finish_for(email, outcome))
        finally:
            await _finish_recording(recorder)
            self._on_change()
            self._idle.set()

    async def _recheck(self, batch: Sequence[Email]) -> tuple[dict[int, str], dict[str, str]]:
        """At the last moment, which emails to leave out and why (E3: every message seen
        meanwhile, emails turned off; E7: every recipient blocked after repeated bounces),
        and which addresses are blocked (a blocked one among several is left out alone)."""
        ids = [e.id for e in batch if e.kind == "notification"]
        async with self._sessions() as session:
            blocked = await blocked_reasons(session, {a for e in batch for a in e.to_addrs})
            seen: dict[int | None, bool] = {}
            off: set[int] = set()
            if ids:
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
                    ).scalars()
                )
        left: dict[int, str] = {}
        for email in batch:
            if email.id in off:
                left[email.id] = REASON_EMAILS_OFF
            elif seen.get(email.id):
                left[email.id] = REASON_SEEN
            elif email.to_addrs and all(a.lower() in blocked for a in email.to_addrs):
                left[email.id] = blocked[email.to_addrs[0].lower()]
        return left, blocked

    def _finish_for(self, email: Email, outcome: Outcome) -> _Finish:
        now = self._clock.now()
        if outcome.verdict is SmtpVerdict.SENT:
            return _Finish(status=EmailStatus.SENT, reply=outcome.reply, sent_at=now)
        if outcome.verdict is SmtpVerdict.FAILED:
            return _Finish(status=EmailStatus.FAILED, reply=outcome.reply)
        if should_give_up(first_queued_at=email.created_at, now=now):
            return _Finish(
                status=EmailStatus.FAILED,
                reply=outcome.reply,
                reason="gave up after 5 days of retries",
            )
        # E7: a recipient the server already accepted is never sent the email again.
        remaining = list(outcome.retry_to) if outcome.sent_to else None
        return _Finish(
            status=EmailStatus.RETRYING,
            reply=outcome.reply,
            next_attempt_at=now + retry_delay(email.attempts),
            to_addrs=remaining,
            reason=f"accepted for {', '.join(outcome.sent_to)}" if remaining else None,
        )


class _SmtpHealth:
    """E6 on `deskbell serve`: the SMTP server's trouble (refused, TLS, login, no answer) is
    logged when it starts or changes, and once when sending works again; never per retry."""

    def __init__(self) -> None:
        self._trouble: str | None = None

    def note(self, trouble: str | None, settings: SmtpSettings | None = None) -> None:
        if trouble == self._trouble:
            return
        if trouble is not None:
            log.warning("cannot send email (will retry): %s", trouble)
        elif settings is not None:
            log.info("sending email through %s:%d works again", settings.host, settings.port)
        self._trouble = trouble


class _Claim:
    """One email's claim while it is in flight (E7): before each SMTP step, make sure the claim
    outlasts that step's timeout; before DATA, that the previous acceptance is on disk.

    `ahead()` asks for the extension early, in the commit that records the email before:
    that commit then runs while this email's MAIL and RCPT are on the wire.
    """

    def __init__(
        self,
        email: Email,
        recorder: _Recorder,
        *,
        clock: Clock,
        lease: timedelta,
        timeouts: SmtpTimeouts,
        recipients: int,
    ) -> None:
        self._email = email
        self._recorder = recorder
        self._clock = clock
        # As claimed: the batch's lease from the claim's time, at the latest.
        self._until = email.claimed_until or clock.now()
        # One extension usually covers the whole transaction; a longer step asks for more.
        self._horizon = max(
            lease,
            timedelta(
                seconds=timeouts.mail
                + timeouts.rcpt * recipients
                + timeouts.data_init
                + timeouts.data_block
                + timeouts.data_term
            )
            + CLAIM_MARGIN,
        )
        self._pending: tuple[datetime, asyncio.Future[bool]] | None = None

    def ahead(self) -> None:
        if self._pending is None:
            self._ask(self._horizon)

    async def before(self, step: str, timeout_s: float) -> None:
        """The StepGuard: may wait for a commit; raises ClaimLostError if the email is gone."""
        if step == "DATA":
            await self._recorder.settled()
        needed = timedelta(seconds=timeout_s) + CLAIM_MARGIN
        for _ in range(2):  # the extension asked ahead, then one for a longer step
            if self._pending is None:
                if self._until - self._clock.now() >= needed:
                    return
                self._ask(max(needed, self._horizon) + CLAIM_MARGIN)
            assert self._pending is not None
            until, extended = self._pending
            self._pending = None
            if not await extended:
                raise ClaimLostError(self._email.id)
            self._until = max(self._until, until)

    def _ask(self, span: timedelta) -> None:
        until = self._clock.now() + span
        self._pending = until, self._recorder.extend(self._email, until)


async def _finish_recording(recorder: _Recorder) -> None:
    """Record every outcome so far, even when stopping cancels us: an accepted email whose
    outcome is lost would be sent again (E7). Bounded, so a dead database cannot hang a stop."""
    closing = asyncio.ensure_future(recorder.close())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RECORD_ON_STOP_S):
                await asyncio.shield(closing)
        raise


@dataclass(frozen=True, slots=True)
class _Finish:
    """How one claimed email ends this attempt."""

    status: EmailStatus
    reply: str | None = None
    reason: str | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    to_addrs: list[str] | None = None


@dataclass(slots=True)
class _Extension:
    email: Email
    until: datetime
    done: asyncio.Future[bool]


class _Recorder:
    """Writes outcomes, claim extensions and change rows as they come, in two lanes.

    The durable lane: the outcome of each SMTP attempt (an acceptance may be in it), and on
    SQLite each claim extension, are written at once, on their own, in order; `settled()`
    waits for the last outcome, and the outbox calls it before each DATA (E7). On SQLite each
    is one UPDATE on the driver's connection in autocommit (a fraction of a millisecond: one
    thread hop, against over a dozen for a transaction through the ORM), which keeps the
    window between a 250 and its record as small as the disk allows. The group lane: left-out
    emails, releases and the change rows the other processes' views follow go in one
    transaction at a time, a burst's change rows gathered into one. A failed write is
    retried, as dropping an accepted email's outcome would send it again.
    """

    RETRY_FOR_S = 30.0
    CHANGES_GATHER_S = 0.05

    def __init__(self, sessions: StoreSessions, *, engine: AsyncEngine, clock: Clock) -> None:
        self._sessions = sessions
        self._engine = engine
        self._clock = clock
        self._waiting: list[tuple[Email, _Finish]] = []
        self._changes: set[int | None] = set()  # conversations whose emails changed
        self._extensions: list[_Extension] = []
        self._releases: list[Email] = []
        self._task: asyncio.Task[None] | None = None
        self._durable: asyncio.Task[None] | None = None  # the last write in the lane
        self._outcome: asyncio.Task[None] | None = None  # the last outcome's
        self._connection: AsyncConnection | None = None  # held for the durable lane
        self._driver: Any = None
        self._sqlite = engine.dialect.name == "sqlite"

    def attempted(self, email: Email, finish: _Finish) -> None:
        """The outcome of an SMTP attempt: written at once, after the one before it."""
        row = _outcome_row(email, finish)

        async def write() -> None:
            written = await self._retrying(
                f"the outcome of email {email.id}", lambda: self._write_one(_RECORD_OUTCOME, row)
            )
            if not written:
                log.warning("email %d was taken over by another process meanwhile", email.id)
            self._changes.add(email.conversation_id)
            self._kick()

        self._outcome = self._chain(write)

    def add(self, email: Email, finish: _Finish) -> None:
        """An outcome without an SMTP attempt (left out, nothing to send)."""
        self._waiting.append((email, finish))
        self._changes.add(email.conversation_id)
        self._kick()

    def release(self, emails: Sequence[Email]) -> None:
        """Give up claims on emails never started, so another sender takes them at once."""
        self._releases.extend(emails)
        self._kick()

    def extend(self, email: Email, until: datetime) -> asyncio.Future[bool]:
        """Extend `email`'s claim to `until`; the future says whether it is still ours once
        that is written (False: another process took it). On SQLite it goes in the durable
        lane (one statement); elsewhere in the next group commit."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not self._sqlite:
            self._extensions.append(_Extension(email, until, done))
            self._kick()
            return done
        row = {"b_id": email.id, "b_claimed_by": email.claimed_by, "b_until": until}

        async def write() -> None:
            try:
                kept = await self._retrying(
                    f"the claim on email {email.id}", lambda: self._write_one(_EXTEND_CLAIM, row)
                )
            except BaseException as exc:
                done.set_exception(exc)
                raise
            done.set_result(bool(kept))

        self._chain(write)
        return done

    async def settled(self) -> None:
        """The last attempt's outcome is on disk; raises if it could not be written."""
        if self._outcome is not None:
            await asyncio.shield(self._outcome)

    async def close(self) -> None:
        try:
            if self._durable is not None:
                await asyncio.shield(self._durable)
            while self._task is not None and not self._task.done():
                await asyncio.shield(self._task)
            if self._task is not None:
                self._task.result()
            if self._pending_group():
                await self._drain()
        finally:
            connection, self._connection, self._driver = self._connection, None, None
            if connection is not None:
                await connection.close()

    def _pending_group(self) -> bool:
        return bool(self._waiting or self._changes or self._extensions or self._releases)

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="deskbell-outbox-record")

    async def _retrying(self, what: str, write: Callable[[], Awaitable[_T]]) -> _T:
        delay = 0.05
        started = self._clock.monotonic()
        while True:
            try:
                return await write()
            except Exception:
                if self._clock.monotonic() - started > self.RETRY_FOR_S:
                    log.exception("could not record %s; giving up", what)
                    raise
                log.warning("recording %s failed; retrying", what, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _chain(self, write: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run `write` in the durable lane, after whatever is there already."""
        previous = self._durable

        async def after_previous() -> None:
            earlier: Exception | None = None
            if previous is not None:
                try:
                    await previous
                except Exception as exc:  # this one is still written; then the failure stands
                    earlier = exc
            await write()
            if earlier is not None:
                raise earlier

        self._durable = asyncio.create_task(after_previous(), name="deskbell-outbox-outcome")
        return self._durable

    async def _write_one(self, statement: Update, row: dict[str, Any]) -> int:
        """One single-row UPDATE, committed; how many rows it changed (0: not ours)."""
        if not self._sqlite:
            async with self._sessions.begin() as session:
                result = await (await session.connection()).execute(statement, [row])
                return int(result.rowcount)
        if self._driver is None:
            connection = await self._engine.connect()
            try:
                self._driver = (await connection.get_raw_connection()).driver_connection
            except BaseException:
                await connection.close()
                raise
            self._connection = connection
        sql, params = _for_driver(statement, self._engine.dialect, row)
        async with self._sessions.write_turn():  # this process's writers queue fairly
            cursor = await self._driver.execute(sql, params)  # autocommit: durable on return
        return int(cursor.rowcount)

    async def _drain(self) -> None:
        while self._pending_group():
            if not (self._waiting or self._extensions or self._releases):
                # Only change rows: nobody waits for them, so gather a burst's into one
                # commit instead of competing with the durable lane once per email.
                await asyncio.sleep(self.CHANGES_GATHER_S)
            group, self._waiting = self._waiting, []
            changes, self._changes = self._changes, set()
            extensions, self._extensions = self._extensions, []
            releases, self._releases = self._releases, []
            try:
                kept = await self._retrying(
                    f"{len(group)} email outcomes",
                    lambda: self._commit(group, changes, extensions, releases),  # noqa: B023
                )
            except BaseException as exc:
                for ext in extensions:
                    if not ext.done.done():
                        ext.done.set_exception(exc)
                raise
            for ext in extensions:
                ext.done.set_result(ext.email.id in kept)

    async def _commit(
        self,
        group: list[tuple[Email, _Finish]],
        changes: set[int | None],
        extensions: list[_Extension],
        releases: list[Email],
    ) -> set[int]:
        """One transaction: outcomes, change rows, claim extensions (the ids still ours),
        releases."""
        now = self._clock.now()
        kept: set[int] = set()
        async with self._sessions.begin() as session:
            conn = await session.connection()
            if group:
                await self._record(conn, group)
            for conversation_id in changes:  # written with their feed positions at commit
                queries.add_change(
                    session, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id
                )
            for ext in extensions:
                result = await conn.execute(
                    _EXTEND_CLAIM,
                    {
                        "b_id": ext.email.id,
                        "b_claimed_by": ext.email.claimed_by,
                        "b_until": ext.until,
                    },
                )
                if result.rowcount:
                    kept.add(ext.email.id)
            if releases:
                await conn.execute(
                    _RELEASE_CLAIM,
                    [{"b_id": e.id, "b_claimed_by": e.claimed_by} for e in releases],
                )
        return kept

    @staticmethod
    async def _record(conn: AsyncConnection, group: list[tuple[Email, _Finish]]) -> None:
        rows = [_outcome_row(email, finish) for email, finish in group]
        result = await conn.execute(_RECORD_OUTCOME, rows)
        if result.rowcount != len(rows):
            log.warning(
                "%d of %d emails were taken over by another process meanwhile",
                len(rows) - result.rowcount,
                len(rows),
            )
        suppressed = [
            {"b_email_id": email.id, "b_reason": finish.reason}
            for email, finish in group
            if finish.status is EmailStatus.SUPPRESSED
        ]
        if suppressed:
            await conn.execute(_SUPPRESS_DELIVERIES, suppressed)


def _outcome_row(email: Email, finish: _Finish) -> dict[str, Any]:
    return {
        "b_id": email.id,
        "b_claimed_by": email.claimed_by,
        "b_status": finish.status.value,
        "b_reply": finish.reply if finish.reply is not None else email.reply,
        "b_reason": finish.reason,
        "b_sent_at": finish.sent_at,
        "b_next_attempt_at": finish.next_attempt_at,
        "b_to_addrs": finish.to_addrs if finish.to_addrs is not None else email.to_addrs,
    }


@functools.cache
def _compiled(
    statement: Update, dialect: Dialect
) -> tuple[SQLCompiler, list[tuple[str, Callable[[Any], Any] | None]]]:
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup or []
    return compiled, [(k, compiled.binds[k].type.bind_processor(dialect)) for k in order]


def _for_driver(statement: Update, dialect: Dialect, row: dict[str, Any]) -> tuple[str, list[Any]]:
    """`statement` as the driver takes it: SQLAlchemy's own SQL and type conversions."""
    compiled, binds = _compiled(statement, dialect)
    values = compiled.construct_params(row) or {}
    return str(compiled), [
        process(values[key]) if process is not None else values[key] for key, process in binds
    ]


_emails = cast(Table, Email.__table__)
_deliveries = cast(Table, Delivery.__table__)
_OURS = and_(_emails.c.id == bindparam("b_id"), _emails.c.claimed_by == bindparam("b_claimed_by"))
# One statement, executed for many rows: the claim check keeps a row another process took
# over (after our lease ran out) from being overwritten.
_RECORD_OUTCOME = (
    _emails.update()
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
)
_EXTEND_CLAIM = (
    _emails.update()
    .where(_OURS)
    .values(claimed_until=bindparam("b_until", type_=_emails.c.claimed_until.type))
)
_RELEASE_CLAIM = _emails.update().where(_OURS).values(claimed_by=None, claimed_until=None)
_SUPPRESS_DELIVERIES = (
    _deliveries.update()
    .where(_deliveries.c.email_id == bindparam("b_email_id"))
    .values(state="suppressed", reason=bindparam("b_reason"))
)
