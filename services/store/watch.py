"""Change notification transport: wake this process's readers when the database changed.

`ChangeSignal` holds the callbacks and calls them on the event loop, coalescing bursts. Three
sources feed it (`start_watcher` picks the one for the engine and the platform):

- this process's writes that called `Tx.notify_after_commit` (from the worker thread), with
  the change-feed events the write recorded (a `Wake` tells the feed what it need not read);
- PostgreSQL: LISTEN on a dedicated psycopg AsyncConnection driven by the event loop; a lost
  connection is re-established with backoff, and the callbacks then run once, since NOTIFY
  has no replay (the reader catches up by reading). NOTIFYs from this process's own pool
  connections are skipped: they were signalled directly at commit;
- SQLite on Linux: an inotify watch on the database's folder (the -wal file changes on every
  commit), confirmed by `PRAGMA data_version` on the writer's connection, which changes only
  when another connection commits: this process's writes and unrelated touches wake nothing.
  The check takes the write lock for a moment, since the writer's last WAL write precedes the
  moment its commit becomes visible (the -shm index, which inotify cannot see).
  Elsewhere (macOS, Windows) `data_version` is polled once a second instead.

No timer runs while nothing happens, except the fallback poll and the PostgreSQL backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services import linux
from services.errors import StoreBusyError, StoreUnreachableError
from services.views import ChangeEvent

if TYPE_CHECKING:
    from services.store.database import Database

__all__ = ["CHECK_GAP_S", "POLL_S", "ChangeSignal", "Wake", "start_watcher"]

log = logging.getLogger(__name__)

POLL_S = 1.0  # the data_version poll where inotify is missing
# Within a burst of commits (this process's own posts wake inotify too), checks are at least
# this far apart: one look stands for all the writes before it, and another process's commit
# is still noticed within a fiftieth of a second. The first event of a burst is looked at once.
CHECK_GAP_S = 0.02
_BACKOFF_S = (0.5, 30.0)  # first and longest wait between PostgreSQL reconnects

Stop = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Wake:
    """What one run of the callbacks stands for (many commits may be merged into one).

    `written`: the change-feed events this process's own commits recorded, in the order the
    commits were signalled. `other`: something else happened too (another process's commit,
    a reconnect, a notification that carried no events): the feed must read to know what."""

    written: tuple[ChangeEvent, ...]
    other: bool


class ChangeSignal:
    """Callbacks to run on the event loop after a change; safe to fire from any thread."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Wake], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # the writer threads and the loop fire
        self._pending = False
        self._written: list[ChangeEvent] = []
        self._other = False
        self.fired = 0  # how many times the callbacks ran (tests count idle wake-ups)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Add `callback` (call on the event loop); returns the function that removes it."""
        return self.subscribe_wakes(lambda _wake: callback())

    def subscribe_wakes(self, callback: Callable[[Wake], None]) -> Callable[[], None]:
        """`subscribe`, the callback getting the `Wake` it stands for."""
        self._loop = asyncio.get_running_loop()
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unsubscribe

    def fire_threadsafe(self, written: Sequence[ChangeEvent] | None = None) -> None:
        """Run the callbacks soon on the loop; calls made before they start are merged.

        `written`: the events a commit of this process recorded; None for any other wake."""
        loop = self._loop
        if loop is None:
            return
        with self._lock:
            if written is None:
                self._other = True
            else:
                self._written.extend(written)
            if self._pending:
                return
            self._pending = True
        try:
            loop.call_soon_threadsafe(self._fire)
        except RuntimeError:  # the loop is closed
            with self._lock:
                self._pending = False

    def _fire(self) -> None:
        # Taken before the callbacks run: a commit racing with them schedules another round.
        with self._lock:
            wake = Wake(written=tuple(self._written), other=self._other)
            self._written.clear()
            self._other = False
            self._pending = False
        self.fired += 1
        for callback in list(self._callbacks):
            try:
                callback(wake)
            except Exception:
                log.exception("a change callback failed")


async def start_watcher(db: Database) -> Stop:
    """Start noticing other processes' writes to `db`; returns the coroutine that stops it."""
    if db.is_postgres:
        return await _PgListener(db).start()
    return await _SqliteWatcher(db).start()


class _SqliteWatcher:
    def __init__(self, db: Database) -> None:
        self._db = db
        path = db.sqlite_path
        assert path is not None
        self._folder = path.parent
        self._names = {path.name, path.name + "-wal"}
        self._version = 0
        self._fd: int | None = None
        self._check_task: asyncio.Task[None] | None = None
        self._again = False
        self._poll: asyncio.TimerHandle | None = None
        self._stopped = False

    async def start(self) -> Stop:
        self._version = await self._db.data_version()
        loop = asyncio.get_running_loop()
        if linux.available():
            try:
                self._fd = linux.inotify_watch(
                    self._folder, linux.IN_MODIFY | linux.IN_CREATE | linux.IN_MOVED_TO
                )
                loop.add_reader(self._fd, self._on_readable)
            except (OSError, NotImplementedError) as exc:
                log.info("no inotify watch on %s (%s); polling once a second", self._folder, exc)
                self._close_fd(loop)
        if self._fd is None:
            self._poll = loop.call_later(POLL_S, self._on_poll)
        return self.stop

    def _close_fd(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _on_readable(self) -> None:
        assert self._fd is not None
        if any(name in self._names for _mask, name in linux.inotify_events(self._fd)):
            self._schedule_check()

    def _on_poll(self) -> None:
        self._poll = None
        self._schedule_check()

    def _schedule_check(self) -> None:
        if self._check_task is not None:
            self._again = True  # one more look once the running check is done
            return
        self._check_task = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._again = False
                started = loop.time()
                try:
                    version = await self._db.data_version()
                except StoreBusyError:
                    self._again = True  # another process still writes: look again after it
                    continue
                except Exception:
                    log.exception("could not read the database's data_version")
                    break
                if version != self._version:
                    self._version = version
                    self._db.changes.fire_threadsafe()
                if not self._again:
                    break
                await asyncio.sleep(max(0.0, started + CHECK_GAP_S - loop.time()))
        finally:
            self._check_task = None
            if self._fd is None and not self._stopped:
                self._poll = asyncio.get_running_loop().call_later(POLL_S, self._on_poll)

    async def stop(self) -> None:
        self._stopped = True
        loop = asyncio.get_running_loop()
        self._close_fd(loop)
        if self._poll is not None:
            self._poll.cancel()
        if self._check_task is not None:
            self._check_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._check_task


class _PgListener:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None

    async def _connect(self) -> Any:
        import psycopg

        from services.store.database import CHANNEL

        args, kwargs = self._db.listen_args()
        # Keepalives notice a peer that vanished without closing (libpq ignores them on a
        # unix socket).
        kwargs.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        conn = await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)
        # NOTIFYs psycopg reads while it runs a statement (LISTEN itself) go here; `_receive`
        # hears the rest.
        conn.add_notify_handler(lambda notify: self._heard(notify.pid))
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def start(self) -> Stop:
        import psycopg

        try:
            conn = await self._connect()
        except psycopg.OperationalError as exc:
            raise StoreUnreachableError(
                "could not listen for changes: the database server did not answer"
            ) from exc
        self._task = asyncio.get_running_loop().create_task(
            self._run(conn), name="deskbell-db-listen"
        )
        return self.stop

    async def _run(self, conn: Any) -> None:
        import psycopg

        self._conn = conn
        try:
            while True:
                try:
                    await self._receive(self._conn)
                except psycopg.Error as exc:
                    log.warning("lost the database's change notifications (%s); reconnecting", exc)
                await self._close_conn()
                self._conn = await self._reconnect()
                # NOTIFYs sent while we were away are gone: readers catch up by reading.
                self._db.changes.fire_threadsafe()
        finally:
            await self._close_conn()

    async def _receive(self, conn: Any) -> None:
        """Hear NOTIFYs until the connection fails (raises psycopg.Error).

        Not psycopg's `notifies()`: it wakes ten times a second to look for Ctrl-C (issue 9:
        idle means idle). This waits on the socket alone; libpq reads and parses the rest.
        """
        import psycopg

        loop = asyncio.get_running_loop()
        pgconn = conn.pgconn
        readable = asyncio.Event()
        loop.add_reader(pgconn.socket, readable.set)
        try:
            while True:
                # First what libpq may hold already (read with LISTEN's reply), then the socket.
                while (notify := pgconn.notifies()) is not None:
                    self._heard(notify.be_pid)
                await readable.wait()
                readable.clear()
                pgconn.consume_input()  # raises OperationalError once the server is gone
                if pgconn.status != psycopg.pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the change notification connection broke")
        finally:
            loop.remove_reader(pgconn.socket)

    def _heard(self, pid: int) -> None:
        if pid not in self._db.own_backend_pids():
            self._db.changes.fire_threadsafe()

    async def _reconnect(self) -> Any:
        import psycopg

        backoff = _BACKOFF_S[0]
        while True:
            await asyncio.sleep(backoff)
            try:
                return await self._connect()
            except psycopg.Error as exc:
                backoff = min(backoff * 2, _BACKOFF_S[1])
                log.info("database still unreachable (%s); next try in %.0f s", exc, backoff)

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
