"""Reading a mailbox over IMAP (I1, I7): new messages in UID order, exactly once each.

IMAPClient is synchronous, so every call to it runs in a worker thread (`asyncio.to_thread`),
one at a time under a lock. New messages are fetched in batches (one FETCH for up to
`batch_size` UIDs), since a round trip per message cost more than reading it.

Two ways to hand messages over:
- `handle` (one message at a time): the cursor (UIDVALIDITY, last UID) is saved after every
  handled message, so a crash re-takes at most the one message in flight and never loses one.
  A handler that raises is logged and skipped: one bad mail never stops the reader.
- `handle_batch` (a fetched batch and the position after it): the handler stores the position
  itself, atomically with what the batch did (the service does both in one transaction), so
  nothing is taken twice or lost. If it raises, the position stays and the batch is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from services.errors import MailboxError, MailboxUnreachableError

if TYPE_CHECKING:
    # imapclient is imported when a mailbox is first read: most starts never read one.
    from imapclient import IMAPClient

__all__ = [
    "BatchHandler",
    "ImapCursor",
    "ImapMessage",
    "ImapPosition",
    "ImapReader",
    "ImapSecurity",
    "ImapSettings",
    "MemoryCursor",
]

log = logging.getLogger(__name__)

ImapSecurity = Literal["tls", "starttls", "none"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: ImapSecurity
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    cafile: str | None = None
    timeout_s: float = 30
    # Bigger messages are fetched only up to this many bytes (the parser copes with the cut).
    max_message_bytes: int = 25_000_000


class ImapCursor(Protocol):
    """Where the reader stands in a folder; the caller persists it (e.g. in the database)."""

    async def load(self, folder: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last handled UID), or None before the first message."""
        ...

    async def save(self, folder: str, uidvalidity: int, uid: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ImapMessage:
    uid: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class ImapPosition:
    """Where the cursor stands once a batch is done: its last UID, handled or expunged."""

    folder: str
    uidvalidity: int
    uid: int


# Handles a fetched batch and stores `position` in the same commit as its effects.
BatchHandler = Callable[[Sequence[ImapMessage], ImapPosition], Awaitable[None]]


@dataclass
class MemoryCursor:
    """An ImapCursor kept in memory (tests, a first run)."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    async def load(self, folder: str) -> tuple[int, int] | None:
        return self.positions.get(folder)

    async def save(self, folder: str, uidvalidity: int, uid: int) -> None:
        self.positions[folder] = (uidvalidity, uid)


def _describe(settings: ImapSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _translate(settings: ImapSettings, exc: BaseException) -> MailboxError:
    """Our error for whatever IMAPClient, imaplib, ssl or the socket raised."""
    from imapclient.exceptions import LoginError

    where = _describe(settings)
    if isinstance(exc, MailboxError):
        return exc
    if isinstance(exc, LoginError):
        return MailboxError(f"The IMAP server {where} refused the login for {settings.username}.")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxError(f"The TLS certificate of {where} is not trusted: {exc.verify_message}.")
    if isinstance(exc, imaplib.IMAP4.abort | OSError | EOFError):
        return MailboxUnreachableError(f"The IMAP server {where} did not answer or hung up: {exc}")
    return MailboxError(f"The IMAP server {where} refused a command: {exc}")


def _connect(settings: ImapSettings) -> IMAPClient:
    from imapclient import IMAPClient

    context = ssl.create_default_context(cafile=settings.cafile)
    client = IMAPClient(
        settings.host,
        port=settings.port,
        ssl=settings.security == "tls",
        ssl_context=context if settings.security == "tls" else None,
        timeout=settings.timeout_s,
    )
    try:
        if settings.security == "starttls":
            client.starttls(context)
        client.login(settings.username, settings.password)
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def _select(client: IMAPClient, folder: str) -> tuple[int, int]:
    """(UIDVALIDITY, number of messages) of the folder, now selected read-only."""
    info: dict[bytes, Any] = client.select_folder(folder, readonly=True)
    return int(info[b"UIDVALIDITY"]), int(info.get(b"EXISTS", 0))


def _uids_above(client: IMAPClient, last: int) -> list[int]:
    # "n:*" always matches the highest UID, even when it is below n: filter again.
    return sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)


def _new_uids(client: IMAPClient, last: int) -> list[tuple[int, int]]:
    """(uid, size) of every message with a UID above `last`, in UID order."""
    uids = _uids_above(client, last)
    if not uids:
        return []
    sizes: dict[int, dict[bytes, Any]] = client.fetch(uids, ["RFC822.SIZE"])
    return [(uid, int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))) for uid in uids]


def _batches(
    new: list[tuple[int, int]], *, max_count: int, max_bytes: int
) -> list[list[tuple[int, int]]]:
    """UID-ordered runs of (uid, size), each at most `max_count` messages and `max_bytes`."""
    batches: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    total = 0
    for uid, size in new:
        if current and (len(current) >= max_count or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append((uid, size))
        total += size
    if current:
        batches.append(current)
    return batches


def _fetch(client: IMAPClient, batch: list[tuple[int, int]], max_bytes: int) -> list[ImapMessage]:
    """The messages of `batch` in UID order; expunged ones are left out."""
    whole = [uid for uid, size in batch if size <= max_bytes]
    found: dict[int, bytes] = {}
    if whole:
        data: dict[int, dict[bytes, Any]] = client.fetch(whole, ["BODY.PEEK[]"])
        for uid, parts in data.items():
            if parts.get(b"BODY[]") is not None:
                found[uid] = bytes(parts[b"BODY[]"])
    for uid in (uid for uid, size in batch if size > max_bytes):
        part: dict[int, dict[bytes, Any]] = client.fetch([uid], [f"BODY.PEEK[]<0.{max_bytes}>"])
        raw = part.get(uid, {}).get(b"BODY[]<0>")
        if raw is not None:
            found[uid] = bytes(raw)
    return [ImapMessage(uid=uid, raw=found[uid]) for uid, _size in batch if uid in found]


class _Doorbell:
    """A socket pair: a thread waiting in select() on `fileno()` wakes when `ring()` is called,
    so an IDLE wait needs no slices to notice a stop or a manual poll (issue 9)."""

    def __init__(self) -> None:
        self._inside, self._outside = socket.socketpair()
        self._inside.setblocking(False)
        self._outside.setblocking(False)

    def fileno(self) -> int:
        return self._inside.fileno()

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # full (already rung) or closed
            self._outside.send(b"\0")

    def quiet(self) -> None:
        """Take back the rings heard so far (the waiter then rechecks what they said)."""
        with contextlib.suppress(OSError):
            while self._inside.recv(64):
                pass

    def close(self) -> None:
        self._inside.close()
        self._outside.close()


def _idle_wait(
    client: IMAPClient,
    last: int,
    max_s: float,
    interrupted: Callable[[], bool],
    idling: threading.Event,
    doorbell: _Doorbell,
) -> None:
    """IDLE until the server reports a change, `max_s` passes, or `interrupted()` (told by
    `doorbell`); `idling` is set while the server is in IDLE."""
    # Mail that arrived while we fetched was announced in those commands' responses, which
    # IMAPClient drops: a last SEARCH right before IDLE closes that gap.
    if _uids_above(client, last):
        return
    client.idle()
    idling.set()
    try:
        _idle_until(client, max_s, interrupted, doorbell)
    finally:
        idling.clear()
    client.idle_done()


def _idle_until(
    client: IMAPClient, max_s: float, interrupted: Callable[[], bool], doorbell: _Doorbell
) -> None:
    """Sleep on the connection and the doorbell together until new mail, `max_s`, or
    `interrupted()`: nothing wakes this thread in between."""
    deadline = time.monotonic() + max_s
    empty_reads = 0
    with selectors.DefaultSelector() as selector:
        selector.register(client.socket(), selectors.EVENT_READ, "server")
        selector.register(doorbell, selectors.EVENT_READ, "doorbell")
        while not interrupted():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready = {key.data for key, _events in selector.select(remaining)}
            if "doorbell" in ready:
                doorbell.quiet()
            if "server" not in ready:
                continue
            responses = client.idle_check(timeout=0)
            if any(r and r[0] == b"BYE" for r in responses):
                raise imaplib.IMAP4.abort("the server said BYE")
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                return
            # idle_check swallows EOF and returns []: a socket that is readable again and
            # again yet yields nothing has been closed by the server.
            empty_reads = 0 if responses else empty_reads + 1
            if empty_reads >= 3:
                raise imaplib.IMAP4.abort("the server closed the connection")


def _closed_after(idle: asyncio.Future[None], doorbell: _Doorbell) -> None:
    doorbell.close()
    if not idle.cancelled():
        idle.exception()  # retrieved: nobody waits for it any more


class ImapReader:
    """Reads new mail from one IMAP folder and hands each raw message to `handle`."""

    def __init__(
        self,
        settings: ImapSettings,
        *,
        cursor: ImapCursor,
        handle: Callable[[bytes], Awaitable[None]] | None = None,
        handle_batch: BatchHandler | None = None,
        batch_size: int = 100,
        batch_bytes: int = 20_000_000,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
        idle_refresh_s: float = 600.0,
    ) -> None:
        if (handle is None) == (handle_batch is None):
            raise ValueError("give either handle or handle_batch")
        self._settings = settings
        self._cursor = cursor
        self._handle = handle
        self._handle_batch = handle_batch
        self._batch_size = max(1, batch_size)
        self._batch_bytes = batch_bytes  # what one batch may hold in memory
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        # RFC 2177: re-issue IDLE well before the server's 30-minute logout.
        self._idle_refresh_s = idle_refresh_s
        self._client: IMAPClient | None = None
        self._last_uid = 0  # in the selected folder, for the check before IDLE
        self._lock = asyncio.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idling = threading.Event()
        self._doorbell: _Doorbell | None = None  # while an IDLE wait runs in its thread

    @property
    def settings(self) -> ImapSettings:
        return self._settings

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def idling(self) -> bool:
        """Whether the server is in IDLE: new mail now arrives without a poll."""
        return self._idling.is_set()

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception as exc:
            raise _translate(self._settings, exc) from exc

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.shutdown)

    async def _ensure_client(self) -> IMAPClient:
        if self._client is None:
            self._client = await self._call(_connect, self._settings)
            log.info("IMAP connected to %s", _describe(self._settings))
        return self._client

    async def poll_once(self) -> int:
        """Handle every message newer than the cursor; how many were handed over."""
        self._interrupt(self._wake)  # cut short an IDLE wait holding the connection
        async with self._lock:
            self._wake.clear()
            reused = self._client is not None
            try:
                return await self._poll()
            except MailboxError:
                await self._drop()
                if not reused:
                    raise
            # A cached session can go stale (server restart, folder deleted): one retry.
            try:
                return await self._poll()
            except MailboxError:
                await self._drop()
                raise

    async def _poll(self) -> int:
        client = await self._ensure_client()
        folder = self._settings.folder
        uidvalidity, _count = await self._call(_select, client, folder)
        position = await self._cursor.load(folder)
        last = position[1] if position is not None and position[0] == uidvalidity else 0
        if position is not None and position[0] != uidvalidity:
            log.warning("UIDVALIDITY of %s changed: reading it again from the start", folder)
        handled = 0
        max_bytes = self._settings.max_message_bytes
        new = await self._call(_new_uids, client, last)
        for uid, size in new:
            if size > max_bytes:
                log.warning("message UID %d is %d bytes: reading only its start", uid, size)
        for batch in _batches(new, max_count=self._batch_size, max_bytes=self._batch_bytes):
            messages = await self._call(_fetch, client, batch, max_bytes)
            end = ImapPosition(folder=folder, uidvalidity=uidvalidity, uid=batch[-1][0])
            if self._handle_batch is not None:
                await self._handle_batch(messages, end)  # stores `end` with its effects
            else:
                await self._one_by_one(messages, end)
            handled += len(messages)
            last = end.uid
        self._last_uid = last
        return handled

    async def _one_by_one(self, messages: Sequence[ImapMessage], end: ImapPosition) -> None:
        assert self._handle is not None
        for message in messages:
            try:
                await self._handle(message.raw)
            except Exception:  # I7: one bad mail never stops the reader
                log.exception(
                    "handling IMAP message UID %d of %s failed; skipped", message.uid, end.folder
                )
            await self._cursor.save(end.folder, end.uidvalidity, message.uid)
        if not messages or messages[-1].uid != end.uid:  # expunged at the end of the batch
            await self._cursor.save(end.folder, end.uidvalidity, end.uid)

    async def _idle_or_sleep(self, stop: asyncio.Event, poll_interval_s: float) -> None:
        async with self._lock:
            client = self._client
            if client is not None and self._wake.is_set() is False:
                capabilities = await self._call(client.capabilities)
                if b"IDLE" in capabilities:

                    def interrupted() -> bool:
                        return self._stopping.is_set() or self._wake.is_set()

                    await self._idle_in_thread(client, interrupted)
                    return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_interval_s)

    async def _idle_in_thread(self, client: IMAPClient, interrupted: Callable[[], bool]) -> None:
        doorbell = self._doorbell = _Doorbell()
        idle = asyncio.ensure_future(
            self._call(
                _idle_wait,
                client,
                self._last_uid,
                self._idle_refresh_s,
                interrupted,
                self._idling,
                doorbell,
            )
        )
        try:
            await asyncio.shield(idle)
        finally:
            self._doorbell = None
            if idle.done():
                doorbell.close()
            else:  # cancelled: end the wait in its thread, then close the doorbell
                self._stopping.set()
                doorbell.ring()
                idle.add_done_callback(lambda done: _closed_after(done, doorbell))

    def _interrupt(self, event: threading.Event) -> None:
        """Set `event` and wake an IDLE wait in its thread, which then reads it."""
        event.set()
        if self._doorbell is not None:
            self._doorbell.ring()

    async def run(self, stop: asyncio.Event, *, poll_interval_s: float = 60.0) -> None:
        """Read until `stop` is set: IDLE when offered, else poll; reconnect with backoff."""
        self._stopping.clear()

        async def mirror_stop() -> None:
            await stop.wait()
            self._interrupt(self._stopping)  # seen by the IDLE wait in its thread

        mirror = asyncio.create_task(mirror_stop())
        delay = self._backoff_initial_s
        try:
            while not stop.is_set():
                try:
                    await self.poll_once()
                    delay = self._backoff_initial_s
                    await self._idle_or_sleep(stop, poll_interval_s)
                    continue
                except MailboxUnreachableError as exc:
                    log.warning("IMAP: %s; retrying in %.1f s", exc, delay)
                except MailboxError as exc:
                    log.error("IMAP: %s; retrying in %.1f s", exc, delay)
                except Exception:  # e.g. the cursor could not be saved: retry, never die
                    log.exception("IMAP reader failed; retrying in %.1f s", delay)
                await self._drop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self._backoff_max_s)
        finally:
            mirror.cancel()
            await self.close()

    async def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.logout)

    async def check(self) -> str:
        """For a "Test connection" button: a summary, or MailboxError with what is wrong."""

        def probe() -> str:
            client = _connect(self._settings)
            try:
                _uidvalidity, count = _select(client, self._settings.folder)
                idle = b"IDLE" in client.capabilities()
            finally:
                with contextlib.suppress(Exception):
                    client.logout()
            mode = "IDLE" if idle else "polling"
            return (
                f"Connected to {_describe(self._settings)} as {self._settings.username}: "
                f"{count} messages in {self._settings.folder}, new mail by {mode}."
            )

        return await self._call(probe)
