"""The change feed: every process learns what any process wrote, when it was written.

Writers append rows to `changes` in the transaction of the change, each with a position that
only grows in commit order (services/store/changes.py). This process's own commits hand
their rows to the feed as written, used as they are when they follow the last position seen;
otherwise the feed reads "every change past the last position I saw" when the database says
something was committed
(`Database.watch`: this process's commits at once; another process's through inotify and
`PRAGMA data_version` on SQLite, LISTEN/NOTIFY on PostgreSQL, with one read after a
reconnect to catch up on what NOTIFY dropped). Nothing runs while nothing happens: no poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select

from services.clock import Clock
from services.retry_log import RetryLog
from services.store import counters
from services.store.database import Database, Tx
from services.store.models import Change, Counter
from services.store.prepared import Prepared
from services.store.watch import Wake
from services.views import ChangeEvent, ChangeKind

__all__ = ["KEEP", "ChangeFeed", "Listener", "changes_after", "kept_window"]

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[ChangeEvent]], None]

KEEP = timedelta(hours=6)  # how long changes stay readable (a client further behind resyncs)
_RETRY_S = 1.0  # after a failed read (the database busy or unreachable)
_PAGE = 5_000  # changes per read: a long-stopped process catches up in pages

_LAST = Prepared[tuple[int]](select(Counter.value).where(Counter.name == counters.CHANGES))
_AFTER = Prepared[tuple[int, str, int | None, int | None, int | None, datetime]](
    select(
        Change.position,
        Change.kind,
        Change.conversation_id,
        Change.person_id,
        Change.subject_id,
        Change.at,
    )
    .where(Change.position > bindparam("after"))
    .order_by(Change.position)
    .limit(_PAGE)
)
_OLDEST = Prepared[tuple[int | None]](select(func.min(Change.position)))
_PURGE = Prepared(delete(Change).where(Change.at < bindparam("before")))


def _last_position(tx: Tx) -> int:
    rows = tx.run(_LAST)
    return int(rows[0][0]) if rows else 0


def changes_after(tx: Tx, after: int) -> list[ChangeEvent]:
    """The next page of changes past position `after`, in position order."""
    return [
        ChangeEvent(
            position=position,
            kind=ChangeKind(kind),
            conversation_id=conv,
            person_id=person,
            subject_id=subject,
            at=at,
        )
        for position, kind, conv, person, subject, at in tx.run(_AFTER, {"after": after})
    ]


def kept_window(tx: Tx) -> tuple[int | None, int]:
    """The oldest position still kept (None: none is) and the last handed out. Every change
    up to the last one read here has committed: the counter stays locked until it does."""
    last = _last_position(tx)
    return tx.run(_OLDEST)[0][0], last


def _purge(tx: Tx, before: datetime) -> None:
    # Positions come from the counter, never from the rows: emptying the table hands none
    # out again.
    tx.run(_PURGE, {"before": before})


class ChangeFeed:
    """Reads new changes when woken and hands each batch, in position order, to listeners."""

    def __init__(self, db: Database, *, clock: Clock, keep: timedelta = KEEP) -> None:
        self._db = db
        self._clock = clock
        self._keep = keep
        self._listeners: list[Listener] = []
        self._last = 0
        self._lock = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None
        self._again = False
        self._retry: asyncio.TimerHandle | None = None
        self._unwatch: Callable[[], None] | None = None
        self._retry_log = RetryLog(log, "reading the change feed")
        self.reads = 0  # reads of the database (tests count them)

    @property
    def last_position(self) -> int:
        return self._last

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each batch of new events; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def start(self, *, after: int | None = None) -> None:
        """Listen from the newest change on: what was written before is not news. `after`: from
        that position on instead (the desktop's first window read the data as of then)."""
        self._last = await self._db.read(_last_position) if after is None else after
        self._unwatch = await self._db.watch_wakes(self._on_wake)
        if after is not None:
            self.poke()  # what came after it is read now, not at the next commit

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        task, self._reading = self._reading, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_wake(self, wake: Wake) -> None:
        """This process's own commits' events are handed on as written when they follow the
        last position read with no gap (nothing another process committed between) and no
        read is under way; anything else is read from the database."""
        if self._unwatch is None:
            return
        if not wake.other and self._reading is None and not self._lock.locked():
            events = sorted(wake.written, key=lambda e: e.position)
            if events and all(e.position == self._last + 1 + n for n, e in enumerate(events)):
                self._last = events[-1].position
                self._deliver(events)
                return
        self.poke()

    def poke(self) -> None:
        """Read the feed soon: something was committed (here or elsewhere). Calls made while a
        read runs give one more read after it, never a read per call. Nothing before `start`."""
        if self._unwatch is None:
            return
        if self._reading is not None:
            self._again = True
            return
        self._reading = asyncio.get_running_loop().create_task(
            self._read_until_quiet(), name="deskbell-change-feed"
        )

    async def _read_until_quiet(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self.read_now()
                    self._retry_log.succeeded()
                except Exception as exc:
                    self._retry_log.failed(exc)
                    if self._retry is None:
                        loop = asyncio.get_running_loop()
                        self._retry = loop.call_later(_RETRY_S, self._retry_now)
                    return
                if not self._again:
                    return
        finally:
            self._reading = None

    def _retry_now(self) -> None:
        self._retry = None
        self.poke()

    async def read_now(self) -> list[ChangeEvent]:
        """Every change past the last one read, handed to the listeners; returns them."""
        async with self._lock:
            found: list[ChangeEvent] = []
            while True:
                self.reads += 1
                batch = await self._db.read(changes_after, self._last)
                if not batch:
                    break
                self._last = batch[-1].position
                found.extend(batch)
                self._deliver(batch)
                if len(batch) < _PAGE:
                    break
            return found

    def _deliver(self, events: Sequence[ChangeEvent]) -> None:
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:
                log.exception("a change listener failed")

    async def purge(self) -> None:
        """Forget changes older than `keep` (the service's hourly upkeep)."""
        await self._db.write(_purge, self._clock.now() - self._keep)
