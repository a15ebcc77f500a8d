"""Opening the database: engine, pragmas, migrations after a backup, corrupt files (D8)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import logging
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.errors import StoreBusyError, StoreCorruptError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["DB_FILENAME", "Store", "StoreSessions", "head_revision", "open_store", "sqlite_url"]

log = logging.getLogger(__name__)

DB_FILENAME = "deskbell.db"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / DB_FILENAME}"


@dataclass(frozen=True, slots=True)
class Store:
    engine: AsyncEngine
    sessions: StoreSessions
    # A message for a person when start-up had to repair something (a corrupt file moved aside).
    notice: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def close(self) -> None:
        await self.engine.dispose()


def _set_sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _driver_autocommit(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when a transaction begins and how (below).
    dbapi_conn.isolation_level = None


def _begin_sqlite(conn: Connection) -> None:
    """Write transactions take SQLite's write lock at BEGIN.

    A deferred transaction that reads, then writes, fails at once with "database is locked"
    when another process committed in between (WAL cannot upgrade a stale snapshot); waiting
    for the lock at BEGIN IMMEDIATE lets busy_timeout do its job instead.
    """
    writing = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


_WRITE_OPTION = "deskbell_write"


class StoreSessions(async_sessionmaker[AsyncSession]):
    """`sessions()` for reads; `sessions.begin()` for a unit of work that writes.

    SQLite has one writer at a time, and its busy handler is not fair: a task that commits
    and begins again at once can starve another connection of this process for longer than
    busy_timeout. So on SQLite this process's writers queue on one FIFO lock first, and only
    other processes meet the busy handler.
    """

    def __init__(self, engine: AsyncEngine, *, serialize_writes: bool, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if serialize_writes else None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:  # type: ignore[override]
        bind = self.kw["bind"]
        session = self(bind=bind.execution_options(**{_WRITE_OPTION: True}))
        if self._write_lock is None:
            async with session.begin():
                yield session
            await session.close()
            return
        try:
            async with asyncio.timeout(WRITE_WAIT_S):
                await self._write_lock.acquire()
        except TimeoutError:
            await session.close()
            raise StoreBusyError(
                f"the database stayed busy for {WRITE_WAIT_S:.0f} s; try again"
            ) from None
        try:
            async with session.begin():
                yield session
        finally:
            self._write_lock.release()
            await session.close()

    @contextlib.asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """This process's turn to write, for one statement run outside `begin()` (an UPDATE
        in autocommit on the driver's connection): the same FIFO queue `begin()` waits in,
        instead of SQLite's busy handler and its sleeps."""
        if self._write_lock is None:
            yield
            return
        try:
            async with asyncio.timeout(WRITE_WAIT_S):
                await self._write_lock.acquire()
        except TimeoutError:
            raise StoreBusyError(
                f"the database stayed busy for {WRITE_WAIT_S:.0f} s; try again"
            ) from None
        try:
            yield
        finally:
            self._write_lock.release()


WRITE_WAIT_S = 30.0


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("services.store") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest migration's revision id, read from the version files' source.

    Alembic's script machinery (and Alembic itself) costs ~0.1 s to import; every start needs
    only this id to see that nothing is to be done, so Alembic is imported only to migrate.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (resources.files("services.store") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("_"):
            continue
        found: dict[str, object] = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    found[target.id] = ast.literal_eval(node.value)
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple):  # a merge revision
            parents.update(str(parent) for parent in down)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    if MigrationContext.configure(connection).get_current_revision() != head_revision():
        command.upgrade(_alembic_config(connection), "head")


def _check_sqlite_file(path: Path, now: datetime) -> str | None:
    """Move a corrupt database aside (D8) rather than crash on every start."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with sqlite3.connect(path) as conn:
            ok = conn.execute("PRAGMA quick_check").fetchone()
        if ok and ok[0] == "ok":
            return None
        problem = str(ok[0]) if ok else "no answer"
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            shutil.move(src, aside.with_name(aside.name + suffix))
    log.error("database %s is damaged (%s); moved to %s", path, problem, aside)
    return (
        f"The database was damaged ({problem}) and has been moved to {aside}. "
        "Deskbell started with an empty one; nothing was deleted."
    )


def _sqlite_revision(path: Path) -> tuple[bool, str | None]:
    """Whether the file holds any table, and its schema revision (sqlite3 only, no Alembic)."""
    if not path.exists() or path.stat().st_size == 0:
        return False, None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            return False, None
        has_version = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name='alembic_version'"
        ).fetchone()[0]
        if not has_version:
            return True, None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return True, row[0] if row else None


def _backup_sqlite(path: Path, now: datetime) -> Path:
    """A consistent copy before a migration (sqlite3's online backup, WAL included)."""
    target = path.with_name(f"{path.name}.backup-{now.strftime('%Y%m%d-%H%M%S')}")
    with contextlib.closing(sqlite3.connect(path)) as conn, sqlite3.connect(target) as dest:
        conn.backup(dest)
    log.info("backed up %s to %s before migrating", path, target)
    return target


def _prepare_sqlite(path: Path, now: datetime) -> str | None:
    """Check, back up and migrate a SQLite file, synchronously (run in a worker thread).

    In a worker thread with the sync driver, a long migration or a backup copy never blocks the
    event loop (and with it the window).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    notice = _check_sqlite_file(path, now)
    try:
        has_tables, current = _sqlite_revision(path)
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(f"cannot open the database {path}: {exc}") from exc
    if current == head_revision():
        return notice  # the usual start: nothing to migrate, so no backup and no Alembic
    if has_tables:
        _backup_sqlite(path, now)
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _set_sqlite_pragmas)
    try:
        with engine.begin() as conn:
            _upgrade(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(f"cannot open the database {path}: {exc}") from exc
    except Exception as exc:
        if "file is not a database" in str(exc):
            raise StoreCorruptError(f"cannot open the database {path}: {exc}") from exc
        raise
    finally:
        engine.dispose()
    return notice


async def open_store(url: str, *, now: datetime, echo: bool = False) -> Store:
    """Open (and create, repair or migrate) the database behind `url`."""
    notice = None
    kwargs: dict[str, Any] = {"echo": echo}
    sqlite = url.startswith("sqlite")
    if sqlite:
        notice = await asyncio.to_thread(_prepare_sqlite, Path(url.split("///", 1)[1]), now)
    else:
        kwargs.update(pool_size=5, max_overflow=5, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if sqlite:
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        event.listen(engine.sync_engine, "connect", _driver_autocommit)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
    else:
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except Exception:
            await engine.dispose()
            raise
    sessions = StoreSessions(engine, serialize_writes=sqlite, expire_on_commit=False)
    return Store(engine=engine, sessions=sessions, notice=notice)
