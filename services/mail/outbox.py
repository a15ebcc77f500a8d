"""The outbox worker: claims queued emails, sends them over one SMTP connection, records each
outcome (E6, E7, T2).

Crash safety (E7): a batch of rows is claimed and marked `sending` in its own committed
transaction before any byte leaves (services/mail/outbox_store.py: one atomic claim, leases on
the database's clock). The claim of a row not yet in flight runs out after `lease` (another
process may then take it); before each SMTP step of the email in flight its claim is extended
past that step's timeout, so it is never taken over while in flight, and an email whose claim
was lost meanwhile is not sent by its old owner. Each acceptance (the server's 250) is
committed before the next email's content is sent, so at most one accepted email is ever
unrecorded. A
process killed mid-send leaves a `sending` row whose claim runs out (or whose owner is visibly
dead on this host); it is then sent again with the bytes fixed at queue time, so the same
Message-ID. Only a crash between a 250 and the commit that follows it can duplicate an email,
as no SMTP client can rule out.

Throughput: every database write of a batch goes through one lane (`_Lane`), one unit of work
at a time, each gathering what is pending: the outcome of the email just sent, the claim
extension of the email after the next, change rows. It commits while the next email's MAIL
RCPT and DATA are on the wire, so the wait before its content is usually nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

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
from services.mail import outbox_store as store
from services.mail.leases import instance_id
from services.mail.outbox_store import Claimed
from services.mail.smtp import (
    Outcome,
    Outgoing,
    SmtpSender,
    SmtpSettings,
    SmtpTimeouts,
)
from services.retry_log import RetryLog
from services.store.database import Database

__all__ = ["ClaimLostError", "Claimed", "OutboxWorker", "instance_id"]

log = logging.getLogger(__name__)

BATCH = 100
_T = TypeVar("_T")
# A commit's latency and a slow step's slack: a claim outlasts its step by this much.
CLAIM_MARGIN = timedelta(seconds=60)
# Stopping lets the email in flight finish this long, then records what finished regardless.
STOP_GRACE_S = 10.0
RECORD_ON_STOP_S = 30.0


class ClaimLostError(Exception):
    """Another process took this email over (our claim had run out before it was in flight)."""


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        smtp_settings: Callable[[], Awaitable[SmtpSettings | None]],
        lease: Callable[[], timedelta],
        bounce_key: Callable[[], bytes],
        on_change: Callable[[], None],
        owner: str | None = None,
    ) -> None:
        """`bounce_key` signs each email's bounce address (the envelope sender, E7)."""
        self._db = db
        self._bounce_key = bounce_key
        self._clock = clock
        self._smtp_settings = smtp_settings
        self._lease = lease
        self._on_change = on_change
        self.owner = owner or instance_id()
        self._batch_no = 0
        self._sender: SmtpSender | None = None
        # E6 on `deskbell serve`: unusable settings or the server's trouble (refused, TLS,
        # login, no answer) logged when they start or change, and once when sending works
        # again; never per retry. Only database faults reach the DueLoop's own RetryLog.
        self._smtp = RetryLog(log, "sending email")
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
            self._smtp.failed(f"the SMTP settings cannot be used: {exc}")
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
        if self._stopping:
            return sender, None  # what it released is due now: not ours to look at again
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
        """When `claim` can next take an email: its retry time, or when another sender's claim
        on it runs out (a sender stopped or killed mid-batch leaves `sending` rows that no
        wake-up announces). The loop sleeps until then and no longer (issue 9)."""
        return await self._db.read(store.next_takeable, self._clock.now())

    async def claim(self, *, limit: int = BATCH) -> list[Claimed]:
        """Take up to `limit` due emails for this process (T2: row claims, one sender each).

        A read first: with nothing due no write lock is taken (issue 9)."""
        now = self._clock.now()
        found = await self._db.read(store.takeable, now)
        if not found.free and not found.dead:
            return []
        self._batch_no += 1
        return await self._db.write(
            store.claim,
            token=f"{self.owner}:{self._batch_no}",
            now=now,
            lease_s=self._lease().total_seconds(),
            limit=limit,
            dead=found.dead,
        )

    async def send_batch(self, sender: SmtpSender, batch: Sequence[Claimed]) -> None:
        """Send a claimed batch in order, one email in flight at a time (E7)."""
        self._idle.clear()
        lane = _Lane(self._db, clock=self._clock)
        try:
            left_out, blocked = await self._recheck(batch)
            key = self._bounce_key()
            timeouts = sender.settings.timeouts
            claims = {
                e.id: _Claim(
                    e,
                    lane,
                    clock=self._clock,
                    lease=self._lease(),
                    timeouts=timeouts,
                    recipients=len(e.to_addrs),
                )
                for e in batch
                if e.id not in left_out and e.raw is not None
            }
            upcoming = [e.id for e in batch if e.id in claims]
            for index, email in enumerate(batch):
                if self._stopping:
                    lane.release(batch[index:])  # not started: free for the next sender
                    break
                if email.id in left_out:
                    lane.finished(
                        email,
                        _Finish(status=EmailStatus.SUPPRESSED, reason=left_out[email.id]),
                    )
                    continue
                if email.raw is None:
                    lane.finished(
                        email, _Finish(status=EmailStatus.FAILED, reason="nothing to send")
                    )
                    continue
                claim = claims[email.id]
                after = upcoming.index(email.id) + 1
                if after < len(upcoming):
                    # The next email's extension rides on this one's MAIL and RCPT.
                    claims[upcoming[after]].ahead()
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
                if sender.trouble is None:
                    self._smtp.succeeded()
                else:
                    self._smtp.failed(sender.trouble)
                lane.finished(email, self._finish_for(email, outcome))
        finally:
            await _finish_recording(lane)
            self._on_change()
            self._idle.set()

    async def _recheck(self, batch: Sequence[Claimed]) -> tuple[dict[int, str], dict[str, str]]:
        """At the last moment, which emails to leave out and why (E3: every message seen
        meanwhile, emails turned off; E7: every recipient blocked after repeated bounces),
        and which addresses are blocked (a blocked one among several is left out alone)."""
        found = await self._db.read(
            store.recheck,
            [e.id for e in batch if e.kind == "notification"],
            {a for e in batch for a in e.to_addrs},
        )
        blocked = found.blocked
        left: dict[int, str] = {}
        for email in batch:
            if email.id in found.off:
                left[email.id] = REASON_EMAILS_OFF
            elif email.id in found.seen:
                left[email.id] = REASON_SEEN
            elif email.to_addrs and all(a.lower() in blocked for a in email.to_addrs):
                left[email.id] = blocked[email.to_addrs[0].lower()]
        return left, blocked

    def _finish_for(self, email: Claimed, outcome: Outcome) -> _Finish:
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
        remaining = tuple(outcome.retry_to) if outcome.sent_to else None
        return _Finish(
            status=EmailStatus.RETRYING,
            reply=outcome.reply,
            next_attempt_at=now + retry_delay(email.attempts),
            to_addrs=remaining,
            reason=f"accepted for {', '.join(outcome.sent_to)}" if remaining else None,
        )


class _Claim:
    """One email's claim while it is in flight (E7): before each SMTP step, make sure the claim
    outlasts that step's timeout; before the content, that the previous acceptance is on disk.

    The claim's end is kept on this process's monotonic clock, counted from before the write
    that set it: the lease runs on the database's clock, so it can only end later than that.
    `ahead()` asks for the extension early, in the commit that records the email before: that
    commit then runs while the email before this one is on the wire.
    """

    def __init__(
        self,
        email: Claimed,
        lane: _Lane,
        *,
        clock: Clock,
        lease: timedelta,
        timeouts: SmtpTimeouts,
        recipients: int,
    ) -> None:
        self._email = email
        self._lane = lane
        self._clock = clock
        # Unknown until an extension lands (the claim's age is not known here).
        self._ends = float("-inf")
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
        self._pending: tuple[float, asyncio.Future[bool]] | None = None

    def ahead(self) -> None:
        if self._pending is None:
            self._ask(self._horizon)

    async def before(self, step: str, timeout_s: float) -> None:
        """The StepGuard: may wait for a commit; raises ClaimLostError if the email is gone.

        Before the content (".": the server can accept an email only once its content is
        complete), the previous acceptance must be committed; MAIL, RCPT and DATA of this
        email overlap that commit."""
        if step == ".":
            await self._lane.settled()
        needed = (timedelta(seconds=timeout_s) + CLAIM_MARGIN).total_seconds()
        for _ in range(2):  # the extension asked ahead, then one for a longer step
            if self._pending is None:
                if self._ends - self._clock.monotonic() >= needed:
                    return
                self._ask(max(timedelta(seconds=needed), self._horizon) + CLAIM_MARGIN)
            assert self._pending is not None
            ends, extended = self._pending
            self._pending = None
            if not await extended:
                raise ClaimLostError(self._email.id)
            self._ends = max(self._ends, ends)

    def _ask(self, span: timedelta) -> None:
        ends = self._clock.monotonic() + span.total_seconds()
        self._pending = ends, self._lane.extend(self._email, span)


async def _finish_recording(lane: _Lane) -> None:
    """Record every outcome so far, even when stopping cancels us: an accepted email whose
    outcome is lost would be sent again (E7). Bounded, so a dead database cannot hang a stop."""
    closing = asyncio.ensure_future(lane.close())
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
    to_addrs: tuple[str, ...] | None = None


class _Lane:
    """The batch's database writes, one unit of work at a time, in order (E7).

    Whatever is pending when a write starts goes in it: outcomes (an acceptance may be among
    them), claim extensions, releases, and the change rows the other processes' views follow.
    `settled()` waits until the last outcome is committed; the outbox calls it before each
    email's content. A failed write is retried for a while, as dropping an accepted email's
    outcome would send it again; giving up fails what waits on it.
    """

    RETRY_FOR_S = 30.0
    # Change rows (what other processes' views follow) ride along at most this often, and
    # once more at the end: nobody waits for them, and one per email would cost a statement.
    CHANGES_EVERY_S = 0.05

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._outcomes: list[store.Finished] = []
        self._extensions: list[tuple[store.Extension, asyncio.Future[bool]]] = []
        self._releases: list[tuple[int, str]] = []
        self._changes: set[int | None] = set()
        self._changes_at = float("-inf")  # monotonic time of the last change rows
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._next: asyncio.Future[None] | None = None  # the commit of the pending outcomes
        self._last: asyncio.Future[None] | None = None  # the commit of the last outcome

    def finished(self, email: Claimed, finish: _Finish) -> None:
        """How `email` ends this attempt: committed in the next write, after the ones before."""
        self._outcomes.append(
            store.Finished(
                id=email.id,
                claimed_by=email.claimed_by,
                status=finish.status.value,
                reply=finish.reply if finish.reply is not None else email.reply,
                reason=finish.reason,
                sent_at=finish.sent_at,
                next_attempt_at=finish.next_attempt_at,
                to_addrs=finish.to_addrs if finish.to_addrs is not None else email.to_addrs,
                suppressed=finish.status is EmailStatus.SUPPRESSED,
            )
        )
        self._changes.add(email.conversation_id)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._last = self._next
        self._kick()

    def release(self, emails: Sequence[Claimed]) -> None:
        """Give up claims on emails never started, so another sender takes them at once."""
        self._releases.extend((e.id, e.claimed_by) for e in emails)
        self._kick()

    def extend(self, email: Claimed, span: timedelta) -> asyncio.Future[bool]:
        """Extend `email`'s claim by `span` from the database's now; the future says whether
        it is still ours once that is committed (False: another process took it)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._extensions.append(
            (store.Extension(email.id, email.claimed_by, span.total_seconds()), done)
        )
        self._kick()
        return done

    async def settled(self) -> None:
        """The last outcome is committed; raises if it could not be written."""
        if self._last is not None:
            await asyncio.shield(self._last)

    async def close(self) -> None:
        """Wait until everything given is committed; raises the first write that failed."""
        self._closing = True
        self._kick()
        while (task := self._task) is not None:
            await asyncio.shield(task)
            if self._task is task:  # nothing was added meanwhile
                return

    def _pending(self) -> bool:
        return bool(
            self._outcomes
            or self._extensions
            or self._releases
            or (self._closing and self._changes)
        )

    def _kick(self) -> None:
        if self._pending() and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._drain(), name="deskbell-outbox-record")

    async def _drain(self) -> None:
        while self._pending():
            outcomes, self._outcomes = self._outcomes, []
            extensions, self._extensions = self._extensions, []
            releases, self._releases = self._releases, []
            changes: set[int | None] = set()
            if self._closing or self._clock.monotonic() - self._changes_at >= self.CHANGES_EVERY_S:
                changes, self._changes = self._changes, set()
                self._changes_at = self._clock.monotonic()
            waiting, self._next = self._next, None
            writes = store.Writes(
                now=self._clock.now(),
                outcomes=tuple(outcomes),
                extensions=tuple(e for e, _ in extensions),
                releases=tuple(releases),
                conversations=frozenset(changes),
            )
            try:
                recorded = await self._retrying(len(outcomes), writes)
            except BaseException as exc:
                for done in [*(d for _, d in extensions), waiting]:
                    if done is None or done.done():
                        continue
                    if isinstance(exc, Exception):
                        done.set_exception(exc)
                        done.exception()  # whoever waits sees it; nobody waiting is fine
                    else:
                        done.cancel()
                raise
            if recorded.lost:
                log.warning(
                    "emails %s were taken over by another process meanwhile",
                    ", ".join(map(str, recorded.lost)),
                )
            for ext, done in extensions:
                if not done.done():
                    done.set_result(ext.id in recorded.kept)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)

    async def _retrying(self, outcomes: int, writes: store.Writes) -> store.Recorded:
        delay = 0.05
        started = self._clock.monotonic()
        while True:
            try:
                return await self._db.write(store.record, writes)
            except Exception:
                if self._clock.monotonic() - started > self.RETRY_FOR_S:
                    log.exception("could not record %d email outcomes; giving up", outcomes)
                    raise
                log.warning("recording %d email outcomes failed; retrying", outcomes, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
