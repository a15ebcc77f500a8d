"""The service's incoming side (I1-I7): one raw mail or an IMAP batch, taken in as one unit
of work on `Database`, and the IMAP reader's life (one process of a workspace reads a
mailbox at a time).

What a mail does is decided purely (services/incoming/decide.py) and applied in one
transaction (services/incoming/intake.py); a mail that makes that transaction fail is logged
as ignored with the error, in its own (I7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from services import operations
from services.clock import Clock
from services.errors import InputError, StoreError
from services.incoming import reader_lease
from services.incoming.cursor import CursorPosition, DbImapCursor, account_key
from services.incoming.decide import IncomingResult, MailPolicy
from services.incoming.imap import (
    ImapMessage,
    ImapPosition,
    ImapReader,
    ImapSecurity,
    ImapSettings,
)
from services.incoming.intake import Arrival, arrive, log_ignored, take_in
from services.incoming.parse import storable
from services.incoming.reader_lease import LeaseState
from services.mail.leases import instance_id
from services.secrets import SecretStore
from services.store.database import Database

__all__ = [
    "IncomingMail",
    "IncomingResult",
    "MailPolicy",
]

log = logging.getLogger(__name__)

# The IMAP reader's lease on its mailbox: renewed at a third of it while reading (I1).
READER_LEASE_S = 60.0


async def _parse_off_loop(raws: Sequence[bytes]) -> list[Arrival]:
    """Parse in a worker thread: a crafted mail costs up to about a second of CPU (the
    parser's bounds, services/incoming/parse.py), which must not stall the event loop."""
    return await asyncio.to_thread(lambda: [arrive(raw) for raw in raws])


class IncomingMail:
    """The service's incoming side: `receive` (one raw mail), and the IMAP reader's life.

    Owned by the service's wiring, which hands in its settings, clock, keyring and what a
    write needs (`context`: the time, the default delay, the automations); the UI and the
    command line reach it through the Service.
    """

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        secrets: SecretStore,
        config: Callable[[str], str],
        policy: Callable[[], MailPolicy],
        context: Callable[[], Awaitable[operations.Context]],
        on_written: Callable[[], None],
    ) -> None:
        self._db = db
        self._owner = instance_id()
        self._clock = clock
        self._secrets = secrets
        self._config = config
        self._policy = policy
        self._context = context
        self._on_written = on_written
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reader: ImapReader | None = None

    async def receive(self, raw: bytes) -> IncomingResult:
        """Process one raw email exactly as if fetched (I2-I7). Never raises for a bad mail;
        raises only when even the log row cannot be written (the database is unusable)."""
        return await self._receive_one(raw)

    async def _receive_one(
        self, raw: bytes, *, position: CursorPosition | None = None
    ) -> IncomingResult:
        """One mail in its own transaction, with the IMAP `position` in the same one."""
        policy = self._policy()
        [arrival] = await _parse_off_loop([raw])
        ctx = await self._context()
        try:
            [result] = await self._db.write(take_in, ctx, policy, [arrival], position=position)
        except StoreError:  # locked, full, read-only: not the mail's fault; it comes again
            raise
        except Exception as exc:  # I7: rolled back; the mail is still logged, as ignored
            reason = storable(f"could not be processed: {type(exc).__name__}: {exc}")
            # One line (`deskbell mail receive` prints what it did, not a traceback).
            log.warning("an incoming mail is logged as ignored: %s", reason)
            log.debug("the failure", exc_info=True)
            result = await self._db.write(
                log_ignored, arrival, reason, now=self._clock.now(), position=position
            )
        self._on_written()
        return result

    async def _receive_batch(
        self, raws: Sequence[bytes], *, position: CursorPosition
    ) -> list[IncomingResult]:
        """Many mails and the IMAP position in one transaction: one commit.

        Raises if any mail fails, with nothing written: the caller then goes one by one.
        """
        policy = self._policy()
        arrivals = await _parse_off_loop(raws)
        ctx = await self._context()
        results = await self._db.write(take_in, ctx, policy, arrivals, position=position)
        if results:
            self._on_written()
        return results

    async def _imap_batch(
        self, cursor: DbImapCursor, messages: Sequence[ImapMessage], end: ImapPosition
    ) -> None:
        """The reader's batch: its mails and the cursor commit together (I1)."""
        try:
            results = await self._receive_batch(
                [m.raw for m in messages],
                position=cursor.at(end.folder, end.uidvalidity, end.uid),
            )
        except Exception:
            # One mail broke the batch (all of it rolled back): redo it mail by mail, so that
            # only that one is logged as ignored (I7); each commits with its own position.
            log.exception("a batch of %d incoming mails failed; one by one now", len(messages))
            results = []
            for n, message in enumerate(messages):
                uid = end.uid if n == len(messages) - 1 else message.uid
                results.append(
                    await self._receive_one(
                        message.raw, position=cursor.at(end.folder, end.uidvalidity, uid)
                    )
                )
            if not messages:
                await cursor.save(end.folder, end.uidvalidity, end.uid)
        for result in results:
            log.info("IMAP mail: %s", result)

    # --- IMAP (I1) -----------------------------------------------------------------------

    def set_password(self, password: str) -> None:
        if not password or "\n" in password or "\r" in password:
            raise InputError("the password is empty or contains a line break")
        self._secrets.set(name="imap", value=password)

    def settings(self) -> ImapSettings | None:
        host = self._config("imap.host")
        if not host:
            return None
        choice = self._config("imap.security")
        security: ImapSecurity
        if choice == "tls":
            security = "tls"
        elif choice == "starttls":
            security = "starttls"
        elif choice == "none":
            security = "none"
        else:
            raise InputError(f"unknown IMAP security {choice!r}")
        return ImapSettings(
            host=host,
            port=int(self._config("imap.port")),
            security=security,
            username=self._config("imap.username"),
            password=self._secrets.get(name="imap") or "",
            folder=self._config("imap.folder") or "INBOX",
            # The SMTP setting's extra CA file serves the mailbox too (one local CA).
            cafile=self._config("smtp.cafile") or None,
        )

    def reader_for(self, settings: ImapSettings) -> ImapReader:
        """The reader the service runs for `settings` (batches committed with the cursor)."""
        cursor = DbImapCursor(
            self._db,
            account=account_key(username=settings.username, host=settings.host, port=settings.port),
            clock=self._clock,
        )

        async def handle_batch(messages: Sequence[ImapMessage], end: ImapPosition) -> None:
            await self._imap_batch(cursor, messages, end)

        return ImapReader(settings, cursor=cursor, handle_batch=handle_batch)

    async def test(self) -> str:
        """Settings' "Test connection": a summary, or MailboxError with what is wrong."""
        settings = self.settings()
        if settings is None:
            raise InputError("set the IMAP host first")
        return await self.reader_for(settings).check()

    async def start(self, *, poll_interval_s: float = 60.0) -> bool:
        """Run the IMAP reader in the background when imap.host is set; whether it runs.

        One process of a workspace reads a mailbox at a time (issue 9): this one reads while
        it holds the mailbox's lease, and otherwise waits for it (`reader` is None meanwhile).
        """
        settings = self.settings()
        if settings is None or self._task is not None:
            return self._task is not None
        self._stop.clear()
        self._task = asyncio.create_task(
            self._read_while_leased(settings, poll_interval_s), name="deskbell-imap"
        )
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.reader = None

    async def _read_while_leased(self, settings: ImapSettings, poll_interval_s: float) -> None:
        account = account_key(username=settings.username, host=settings.host, port=settings.port)
        wake = asyncio.Event()
        stopping = asyncio.ensure_future(self._stop.wait())
        stopping.add_done_callback(lambda _: wake.set())
        unwatch = await self._db.watch(wake.set)  # the holder may give the lease up
        try:
            while not self._stop.is_set():
                wake.clear()
                state = await self._take_lease(account)
                if state is not None and state.held:
                    await self._read_leased(settings, account, poll_interval_s, wake)
                    continue
                # Someone else reads it: look again when its lease runs out, or sooner if
                # the database changes (it may have stopped); a fault: after a pause.
                retry = self._clock.now() + timedelta(seconds=READER_LEASE_S / 3)
                ends_at = state.ends_at if state is not None else retry
                await self._clock.sleep_until(ends_at or retry, wake)
        finally:
            unwatch()
            stopping.cancel()

    async def _take_lease(self, account: str) -> LeaseState | None:
        try:
            return await self._db.write(
                reader_lease.take,
                account=account,
                owner=self._owner,
                now=self._clock.now(),
                span_s=READER_LEASE_S,
            )
        except StoreError as exc:
            log.warning("could not take the mailbox's reading lease: %s", exc)
            return None

    async def _read_leased(
        self, settings: ImapSettings, account: str, poll_interval_s: float, wake: asyncio.Event
    ) -> None:
        """Read while the lease holds, renewing it at a third of its span; give it up after."""
        stop_reader = asyncio.Event()
        self.reader = reader = self.reader_for(settings)
        reading = asyncio.create_task(reader.run(stop_reader, poll_interval_s=poll_interval_s))
        reading.add_done_callback(lambda _: wake.set())
        try:
            while not self._stop.is_set() and not reading.done():
                wake.clear()
                renew_at = self._clock.now() + timedelta(seconds=READER_LEASE_S / 3)
                await self._clock.sleep_until(renew_at, wake)
                if self._stop.is_set() or reading.done():
                    break
                if self._clock.now() < renew_at:
                    continue  # woken by a database change: nothing to renew yet
                state = await self._take_lease(account)
                if state is not None and not state.held:
                    log.warning("another process reads the mailbox now; this one stops reading")
                    break
        finally:
            stop_reader.set()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            self.reader = None
            # Bounded: a lease that cannot be given up runs out on its own.
            with contextlib.suppress(StoreError, TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(
                        self._db.write(reader_lease.give_up, account=account, owner=self._owner)
                    )
