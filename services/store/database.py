"""The database worker: each unit of work runs whole, in one transaction, in a worker thread.

    async def post(...):
        return await db.write(_post, author_id, text)   # one hop, one transaction

    def _post(tx: Tx, author_id: int, text: str) -> Posted:   # runs in a worker thread
        (message_id,) = tx.run(INSERT_MESSAGE, {...})[0]
        tx.run_many(INSERT_DELIVERY, rows)
        tx.notify_after_commit()
        return Posted(message_id=message_id)                 # a plain frozen dataclass

Contract of a unit of work `work(tx, *args, **kwargs)`:
- It runs in a worker thread, never on the event loop: it must not touch asyncio objects.
- It is a pure function of the database and its arguments: it may run more than once (a
  serialization failure or a deadlock on PostgreSQL, a connection lost before COMMIT), so it has
  no effect outside the transaction (no e-mail sent, no global changed). Effects for the rest of
  the process go in its return value or through `tx.notify_after_commit`.
- It returns plain values (frozen dataclasses, tuples, ints), never ORM instances: they would be
  used on another thread after their session closed.
- Raising rolls the transaction back; the exception reaches the caller, translated when it is
  the store's (services/store/failures.py: busy, connection lost, a constraint).

Threads and connections:
- SQLite (the `sqlite3` driver): one writer thread with one long-lived connection; every write
  begins with BEGIN IMMEDIATE, so this process's writers queue FIFO in that thread and only
  other processes meet SQLite's busy handler (`busy_timeout_s`). WAL, synchronous=NORMAL,
  foreign keys on. `sqlite_readers` reader threads (1-2) with their own query-only connections;
  in WAL mode they read while the writer writes.
- PostgreSQL (psycopg 3, sync): `pool_size` threads, each owning a connection, serve reads and
  writes alike; reads run as READ ONLY transactions. Size it to the transactions you want in
  flight at once: a desktop needs 2, a server about twice its cores. Each process also holds one
  listening connection once `watch` is used, so the server needs
  processes x (pool_size + 1) connections within its `max_connections` (100 by default).
  A dead connection is replaced; a unit of work that lost its connection before COMMIT runs
  again once, and serialization failures or deadlocks run it again up to `retries` times.
"""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.pool import NullPool

from services.errors import StoreUnreachableError
from services.store.failures import Failure, classify, translate_error
from services.store.prepared import Prepared, RowT
from services.store.watch import ChangeSignal, Stop, Wake, start_watcher
from services.store.workers import ConnectionSlot, WorkerPool

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.views import ChangeEvent

__all__ = [
    "CHANNEL",
    "Database",
    "Tx",
    "add_before_commit",
    "database_target",
    "decode_text",
    "use_wal",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# The LISTEN/NOTIFY channel of a Deskbell database (PostgreSQL).
CHANNEL = "deskbell_changes"
# PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more.
_MAX_PAYLOAD = 7999
_MIN_SQLITE = (3, 35, 0)  # RETURNING

# A text value that is not valid UTF-8 (a row damaged on disk or written by another program)
# reads with U+FFFD in place of the bad bytes instead of failing every query that touches it.
# Measured: about 0.1 us a value over sqlite3's own decoding, 4% on reading an item's messages.
decode_text = functools.partial(str, encoding="utf-8", errors="replace")


def database_target(url: str) -> tuple[str, str]:
    """(`"sqlite"` or `"postgresql"`, the SQLAlchemy URL with the sync driver) for `url`.

    `postgresql://`, `postgresql+psycopg://` and `postgresql+asyncpg://` all mean psycopg 3;
    `sqlite:///path` and `sqlite+aiosqlite:///path` both mean the sqlite3 module.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the worker threads; give a file"
            )
        return "sqlite", parsed.set(drivername="sqlite+pysqlite").render_as_string(False)
    if backend in ("postgresql", "postgres"):
        return "postgresql", parsed.set(drivername="postgresql+psycopg").render_as_string(False)
    raise ValueError(f"unsupported database URL {parsed!r}: use sqlite:/// or postgresql://")


class Tx:
    """What a unit of work gets: one open transaction on one connection, in a worker thread.

    - `conn`: the SQLAlchemy Core `Connection`, inside the transaction.
    - `session`: an ORM `Session` bound to `conn`, created on first use (for code that is not
      hot); flushed before COMMIT, `expire_on_commit=False`.
    - `run` / `run_many`: hot `Prepared` statements straight on the DBAPI cursor.
    - `notify_after_commit`: tell watchers (this process's and others') once this commits.
    - `before_commit`: run a function as the transaction's last statements (the change feed
      takes its positions there); `info`: a dict that lives as long as the transaction.
    - `dialect`, `is_postgres`, `writing` (False inside `Database.read`).
    """

    __slots__ = (
        "_dbapi",
        "_session",
        "conn",
        "dialect",
        "info",
        "is_postgres",
        "notified",
        "undescribed",
        "writing",
        "written",
    )

    def __init__(
        self,
        conn: Connection,
        *,
        writing: bool,
        is_postgres: bool,
    ) -> None:
        self.conn = conn
        self.dialect: Dialect = conn.dialect
        self.is_postgres = is_postgres
        self.writing = writing
        self.notified = False
        self.written: list[ChangeEvent] = []
        self.undescribed = False  # notified without the events it stands for
        self._dbapi: Any = _driver(conn)
        self._session: Session | None = None
        self.info: dict[str, Any] = {}

    @property
    def session(self) -> Session:
        if self._session is None:
            from sqlalchemy.orm import Session

            self._session = Session(bind=self.conn, expire_on_commit=False)
        return self._session

    def run(self, prepared: Prepared[RowT], params: Mapping[str, Any] | None = None) -> list[RowT]:
        """Execute once; the rows it returns (SELECT, or DML with RETURNING), else []."""
        params = params or {}
        if self._session is not None:
            self._session.flush()  # the statement must see what the session holds
        plan = prepared.plan(self.dialect, params)
        sql, driver_params = plan.bind(params)
        cursor = self._dbapi.cursor()
        try:
            cursor.execute(sql, driver_params)
            if cursor.description is None:
                return []
            return plan.rows(cursor, self.dialect)
        finally:
            cursor.close()

    def run_many(self, prepared: Prepared[Any], rows: Iterable[Mapping[str, Any]]) -> int:
        """Execute once per parameter set with the driver's `executemany`; the rows affected.

        Every set needs the same keys. No RETURNING here (sqlite3 cannot): use `run` per row.
        """
        batch = list(rows)
        if not batch:
            return 0
        if self._session is not None:
            self._session.flush()
        plan = prepared.plan(self.dialect, batch[0])
        if plan.expanding:
            raise ValueError("run_many cannot expand IN lists: their SQL differs per row")
        sql = plan.sql
        params = [plan.bind(p)[1] for p in batch]
        cursor = self._dbapi.cursor()
        try:
            cursor.executemany(sql, params)
            count: int = cursor.rowcount
            return count
        finally:
            cursor.close()

    def notify_after_commit(
        self, payload: str = "", *, written: Sequence[ChangeEvent] | None = None
    ) -> None:
        """Once this transaction commits, wake every `Database.watch` callback, here and in
        other processes. On PostgreSQL this is `pg_notify` inside the transaction (delivered at
        COMMIT, dropped on rollback; `payload` travels with it, under 8,000 bytes); on SQLite
        other processes notice the commit itself. `written`: the change-feed events this
        transaction recorded, handed to this process's feed (`Wake`) so it need not read them
        back; without them the feed reads."""
        if not self.writing:
            raise RuntimeError("a read cannot notify: use Database.write")
        if len(payload.encode()) > _MAX_PAYLOAD:  # checked on SQLite too: same code, both engines
            raise ValueError("a notification payload must stay under 8,000 bytes")
        if self.is_postgres:
            cursor = self._dbapi.cursor()
            try:
                cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            finally:
                cursor.close()
        self.notified = True
        if written is None:
            self.undescribed = True
        else:
            self.written.extend(written)

    def before_commit(self, fn: Callable[[Tx], None]) -> None:
        """Run `fn(tx)` once, after the unit of work returned and just before COMMIT (in the
        order registered; registering the same function again changes nothing)."""
        if not self.writing:
            raise RuntimeError("a read has nothing to commit: use Database.write")
        add_before_commit(self.info, fn)

    def run_before_commit(self) -> None:
        """The `before_commit` functions, each once (`Database` runs them before COMMIT)."""
        hooks: list[Callable[[Tx], None]] = self.info.get(_BEFORE_COMMIT, [])
        while hooks:
            hooks.pop(0)(self)

    def _flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


_BEFORE_COMMIT = "deskbell.before_commit"


def add_before_commit(info: dict[str, Any], fn: Callable[[Tx], None]) -> None:
    """`Tx.before_commit` on a transaction's `info`."""
    hooks: list[Callable[[Tx], None]] = info.setdefault(_BEFORE_COMMIT, [])
    if fn not in hooks:
        hooks.append(fn)


def _check_plain(result: object) -> None:
    """A cheap guard against the common leak: an ORM instance (or a list of them) returned."""
    probe = result[0] if isinstance(result, list | tuple) and result else result
    if hasattr(probe, "_sa_instance_state"):
        raise TypeError(
            "a unit of work returned an ORM instance; return a plain frozen dataclass instead"
        )


class Database:
    """One database, opened from a URL; see the module docstring for the contract.

    Create with `await Database.open(url)`; end with `await db.close()`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        is_postgres: bool,
        pool_size: int,
        sqlite_readers: int,
        busy_timeout_s: float,
        retries: int,
    ) -> None:
        self._engine = engine
        self.is_postgres = is_postgres
        self._busy_timeout_s = busy_timeout_s
        self._retries = retries
        self._own_pids: frozenset[int] = frozenset()
        self._pids_lock = threading.Lock()
        self.changes = ChangeSignal()
        self._watcher: Stop | None = None
        event.listen(engine, "connect", self._on_connect)
        if is_postgres:
            self._writer = self._reader = WorkerPool(
                "pg",
                pool_size,
                connect=engine.connect,
                on_open=self._on_open,
                on_close=self._on_close,
            )
        else:
            event.listen(engine, "begin", _begin_sqlite)
            self._writer = WorkerPool(
                "writer",
                1,
                connect=lambda: engine.connect().execution_options(deskbell_writer=True),
                on_open=self._on_open,
                on_close=self._on_close,
            )
            self._reader = WorkerPool(
                "reader",
                sqlite_readers,
                connect=engine.connect,
                on_open=self._on_open,
                on_close=self._on_close,
            )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 2,
        sqlite_readers: int = 1,
        busy_timeout_s: float = 10.0,
        retries: int = 5,
    ) -> Database:
        """Open the database behind `url` and check that it answers.

        `pool_size`: PostgreSQL connections (and threads) of this process; `sqlite_readers`:
        SQLite reader threads; `busy_timeout_s`: how long a SQLite write waits for another
        process's lock before StoreBusyError; `retries`: re-runs after a PostgreSQL
        serialization failure or deadlock. The schema is not migrated here.
        """
        kind, sa_url = database_target(url)
        if kind == "sqlite" and sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise RuntimeError(
                f"Deskbell needs SQLite 3.35 or newer; this Python has {sqlite3.sqlite_version}"
            )
        engine = create_engine(sa_url, poolclass=NullPool)
        db = cls(
            engine,
            is_postgres=kind == "postgresql",
            pool_size=pool_size,
            sqlite_readers=sqlite_readers,
            busy_timeout_s=busy_timeout_s,
            retries=retries,
        )
        try:
            # Opens the writer's connection first: it switches the file to WAL.
            await db.write(lambda tx: None)
        except BaseException:
            await db.close()
            raise
        return db

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None on PostgreSQL."""
        database = self._engine.url.database
        return None if self.is_postgres or database is None else Path(database)

    @property
    def _where(self) -> Path | str:
        """How error messages name this database."""
        return self.sqlite_path or "database"

    async def read(
        self, work: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `work(tx, *args, **kwargs)` in a read-only transaction; return its result."""
        return await self._reader.submit(
            lambda slot: self._unit(slot, False, lambda tx: work(tx, *args, **kwargs))
        )

    async def write(
        self, work: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `work(tx, *args, **kwargs)` in a write transaction, commit, return its result.

        Watchers are woken after the commit when the work called `tx.notify_after_commit`.
        """
        return await self._writer.submit(
            lambda slot: self._unit(slot, True, lambda tx: work(tx, *args, **kwargs))
        )

    async def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback()` on the event loop after changes; returns a function to stop.

        It runs after a write of this process that called `notify_after_commit`, after another
        process committed (PostgreSQL: its NOTIFY; SQLite: its commit), and after the
        PostgreSQL listener reconnected (changes may have been missed: read again). Bursts are
        coalesced: one call may stand for many commits, so the callback reads what changed.
        When this returns, every later commit is noticed.
        """
        if self._watcher is None:
            self._watcher = await start_watcher(self)
        return self.changes.subscribe(callback)

    async def watch_wakes(self, callback: Callable[[Wake], None]) -> Callable[[], None]:
        """`watch`, the callback getting the `Wake` it stands for: which change-feed events
        this process's own commits wrote, and whether anything else may have changed."""
        if self._watcher is None:
            self._watcher = await start_watcher(self)
        return self.changes.subscribe_wakes(callback)

    def own_backend_pids(self) -> frozenset[int]:
        """PostgreSQL server processes behind this process's pool (their NOTIFYs are local)."""
        return self._own_pids

    async def data_version(self) -> int:
        """SQLite's `PRAGMA data_version` on the writer's connection: it changes exactly when
        another process commits (this process's writes all go through that connection).

        Read under the write lock (BEGIN IMMEDIATE, then ROLLBACK): another process's last WAL
        write comes before its commit is visible, so a check woken by that write waits for
        the commit instead of missing it. StoreBusyError if the lock stays taken.
        """
        return await self._writer.submit(_data_version)

    def listen_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """psycopg `connect()` arguments for this PostgreSQL database (for the listener)."""
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        return tuple(args), dict(kwargs)

    async def close(self) -> None:
        """Stop watching, let queued work finish, close every connection."""
        if self._watcher is not None:
            stop, self._watcher = self._watcher, None
            await stop()
        await self._writer.close()
        if self._reader is not self._writer:
            await self._reader.close()
        self._engine.dispose()

    # --- in the worker threads ---

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        if self.is_postgres:
            return
        # SQLAlchemy's "begin" event, not the sqlite3 module, starts transactions (below).
        dbapi_conn.isolation_level = None
        dbapi_conn.text_factory = decode_text
        timeout_ms = int(self._busy_timeout_s * 1000)
        for pragma in ("foreign_keys=ON", f"busy_timeout={timeout_ms}"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    def _on_open(self, conn: Connection) -> None:
        dbapi = _driver(conn)
        if self.is_postgres:
            with self._pids_lock:
                self._own_pids = self._own_pids | {dbapi.info.backend_pid}
            return
        if conn.get_execution_options().get("deskbell_writer"):
            use_wal(dbapi, timeout_s=self._busy_timeout_s)
            dbapi.execute("PRAGMA synchronous=NORMAL")
        else:
            dbapi.execute("PRAGMA query_only=ON")

    def _on_close(self, conn: Connection) -> None:
        if not self.is_postgres:
            return
        try:
            pid = _driver(conn).info.backend_pid
        except Exception:
            return
        with self._pids_lock:
            self._own_pids = self._own_pids - {pid}

    def _unit(self, slot: ConnectionSlot, writing: bool, work: Callable[[Tx], T]) -> T:
        """Run `work` in one transaction on `slot`'s connection, retrying what is safe."""
        conflicts = 0
        reconnected = False
        while True:
            committing = False
            tx: Tx | None = None
            try:
                conn = slot.get()
                if self.is_postgres:
                    _set_read_only(conn, not writing)
                trans = conn.begin()
                tx = Tx(conn, writing=writing, is_postgres=self.is_postgres)
                try:
                    result = work(tx)
                    if writing:
                        tx.run_before_commit()
                    tx._flush()
                    _check_plain(result)
                except BaseException:
                    _rollback(slot, trans)
                    raise
                committing = True
                try:
                    trans.commit()
                except BaseException:
                    _rollback(slot, trans)  # a refused COMMIT (a full disk) leaves it open
                    raise
            except Exception as exc:
                failure = classify(exc, connection_broken=_broken(slot))
                if failure is Failure.LOST:
                    slot.discard()
                    if committing:
                        raise StoreUnreachableError(
                            "the database server hung up during COMMIT; it is not known whether "
                            "the change was saved"
                        ) from exc
                    if not reconnected:
                        reconnected = True
                        continue
                elif failure is Failure.RETRY and conflicts < self._retries:
                    conflicts += 1
                    time.sleep(random.uniform(0, 0.005 * 2**conflicts))
                    continue
                translated = translate_error(exc, failure, path=self._where)
                if translated is exc:
                    raise
                raise translated from exc
            finally:
                if tx is not None:
                    tx._close()
            if tx.notified:
                self.changes.fire_threadsafe(None if tx.undescribed else tx.written)
            return result


def use_wal(dbapi_conn: sqlite3.Connection, *, timeout_s: float) -> None:
    """Put the file in WAL mode (it stays so: the first start sets it for every later one).

    Switching needs the file to itself, and SQLite answers a switch that meets another
    connection at once with "database is locked", without waiting in its busy handler: when
    several processes start on a new file together, retry until `timeout_s` is spent."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _data_version(slot: ConnectionSlot) -> int:
    driver = slot.driver()
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise translate_error(exc) from exc
    try:
        return int(driver.execute("PRAGMA data_version").fetchone()[0])
    finally:
        driver.execute("ROLLBACK")


def _driver(conn: Connection) -> Any:
    """The driver's own connection (sqlite3 or psycopg) under a SQLAlchemy Connection."""
    return conn.connection.driver_connection


def _begin_sqlite(conn: Connection) -> None:
    """Writes take SQLite's write lock at BEGIN: a deferred transaction that reads, then writes,
    fails at once with "database is locked" when another process committed in between (WAL
    cannot upgrade a stale snapshot); waiting at BEGIN IMMEDIATE lets busy_timeout do its job."""
    writer = conn.get_execution_options().get("deskbell_writer", False)
    _driver(conn).execute("BEGIN IMMEDIATE" if writer else "BEGIN")


def _set_read_only(conn: Connection, read_only: bool) -> None:
    dbapi = _driver(conn)
    if dbapi.read_only != read_only:
        dbapi.read_only = read_only  # psycopg sends BEGIN READ ONLY with the next statement


def _rollback(slot: ConnectionSlot, trans: Any) -> None:
    try:
        trans.rollback()
    except Exception:
        log.debug("rollback failed; dropping the connection", exc_info=True)
        slot.discard()


def _broken(slot: ConnectionSlot) -> bool:
    """No connection at all (connecting failed), or psycopg saw its socket die."""
    conn = slot.current
    if conn is None:
        return True
    try:
        dbapi = _driver(conn)
    except Exception:
        return True
    return bool(getattr(dbapi, "broken", False) or getattr(dbapi, "closed", False))
