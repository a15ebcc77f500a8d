"""Opening the database: engine, pragmas, migrations after a backup, corrupt files (D8)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import logging
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from services.errors import StoreUnavailableError
from services.store.database import database_target, decode_text, use_wal
from services.store.failures import is_damage, store_error, watch_engine
from services.store.workspace_lock import lock_workspace

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "DB_FILENAME",
    "decode_text",
    "head_revision",
    "prepare_database",
    "schema_revision",
    "sqlite_url",
]

log = logging.getLogger(__name__)

DB_FILENAME = "deskbell.db"

_T = TypeVar("_T")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DB_FILENAME}"


BUSY_TIMEOUT_S = 10.0


def _set_sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.text_factory = decode_text
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    use_wal(dbapi_conn, timeout_s=BUSY_TIMEOUT_S)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _driver_autocommit(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when a transaction begins and how (below).
    dbapi_conn.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    """The migration takes SQLite's write lock at BEGIN, so DDL runs in its transaction."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


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

    lock_workspace(connection)  # then look: another process may have just migrated
    if MigrationContext.configure(connection).get_current_revision() != head_revision():
        command.upgrade(_alembic_config(connection), "head")


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    conn.text_factory = decode_text
    return conn


def _quick_check(path: Path) -> str | None:
    """What `PRAGMA quick_check` or SQLite itself calls damaged in the file, or None.

    A database that is locked, busy, read-only or on a full disk raises its own error."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with contextlib.closing(_connect_sqlite(path)) as conn:
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        if not is_damage(exc):
            raise
        return str(exc)
    return None if found == ["ok"] else "; ".join(found[:3]) or "no answer"


def _check_sqlite_file(path: Path, now: datetime) -> str | None:
    """Move a damaged database aside (D8) rather than crash on every start.

    Only a failed integrity check or a file SQLite calls damaged counts: a database that is
    locked, busy, read-only or on a full disk raises its own error and is left where it is.
    """
    problem = _quick_check(path)
    if problem is None:
        return None
    stamp = now.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            shutil.move(src, aside.with_name(aside.name + suffix))
    # The notice below reaches the person (printed, shown in a dialog); this is for the log.
    log.info("database %s failed its integrity check (%s); moved to %s", path, problem, aside)
    return (
        f"The database failed its integrity check ({problem}), so it was moved, unchanged, to"
        f" {aside} and Deskbell started with an empty one. To get back what can still be read,"
        f" quit Deskbell and run: deskbell rescue '{aside}'"
    )


def _sqlite_revision(path: Path) -> tuple[bool, str | None]:
    """Whether the file holds any table, and its schema revision (sqlite3 only, no Alembic)."""
    if not path.exists() or path.stat().st_size == 0:
        return False, None
    with contextlib.closing(_connect_sqlite(path)) as conn:
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
    with (
        contextlib.closing(_connect_sqlite(path)) as conn,
        contextlib.closing(sqlite3.connect(target)) as dest,
    ):
        conn.backup(dest)
    log.info("backed up %s to %s before migrating", path, target)
    return target


def _prepare_sqlite(path: Path, now: datetime, *, check: bool = True) -> str | None:
    """Check, back up and migrate a SQLite file, synchronously (run in a worker thread).

    In a worker thread with the sync driver, a long migration or a backup copy never blocks the
    event loop (and with it the window). Whatever the file or its disk refuses becomes one
    StoreError that says so. `check=False` leaves the integrity check to `file_problem`
    (the desktop runs it once its window shows), unless the file cannot even be read.
    """
    try:
        return _check_and_migrate(path, now, check=check)
    except (sqlite3.Error, OSError) as exc:
        error = store_error(exc, path=path)
        if error is None:
            raise
        raise error from exc


def _writable_like_the_database(path: Path) -> None:
    """SQLite creates -wal and -shm with the database's permissions, and a read-only -shm
    keeps the database read-only after its own mode was fixed: give them the database's."""
    try:
        mode = path.stat().st_mode & 0o777
        for suffix in ("-wal", "-shm"):
            sidecar = path.with_name(path.name + suffix)
            if sidecar.exists() and sidecar.stat().st_mode & 0o777 != mode:
                sidecar.chmod(mode)
    except OSError:
        return  # not ours to change: opening the database says what is wrong


def _check_and_migrate(path: Path, now: datetime, *, check: bool) -> str | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _writable_like_the_database(path)
    notice = _check_sqlite_file(path, now) if check else None
    try:
        has_tables, current = _sqlite_revision(path)
    except sqlite3.Error as exc:
        if check or not is_damage(exc):
            raise
        notice = _check_sqlite_file(path, now)  # not even its schema reads: check it now
        has_tables, current = _sqlite_revision(path)
    if current == head_revision():
        return notice  # the usual start: nothing to migrate, so no backup and no Alembic
    if has_tables:
        _backup_sqlite(path, now)
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _set_sqlite_pragmas)
    event.listen(engine, "connect", _driver_autocommit)
    event.listen(engine, "begin", _begin_immediate)
    watch_engine(engine, path=path)
    try:
        # One transaction under the write lock: a process starting at the same time waits,
        # then finds the schema migrated; a migration that fails leaves nothing half done.
        with engine.begin() as conn:
            _upgrade(conn)
    finally:
        engine.dispose()
    return notice


def file_problem(path: Path) -> str | None:
    """What SQLite's quick check finds wrong with the database file, or None. Reads only,
    beside a running service; moving a damaged file aside is for the next open with the
    check (`prepare_database`)."""
    try:
        return _quick_check(path)
    except (sqlite3.Error, OSError) as exc:
        error = store_error(exc, path=path)
        if error is None:
            raise
        raise error from exc


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an invalid URL)"


def _on_server(url: str, work: Callable[[Connection], _T], *, transaction: bool) -> _T:
    """`work` on one connection to a database server (in a worker thread, the sync driver);
    whatever stops it from connecting becomes one StoreUnavailableError."""
    try:
        engine = create_engine(url, poolclass=NullPool)
    except (ImportError, ArgumentError) as exc:  # no driver for that URL
        raise StoreUnavailableError(f"cannot use the database {_shown_url(url)}: {exc}") from exc
    try:
        with engine.begin() if transaction else engine.connect() as conn:
            return work(conn)
    except (OSError, SQLAlchemyError) as exc:
        reason = getattr(exc, "orig", None) or exc
        first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
        raise StoreUnavailableError(
            f"cannot reach the database {_shown_url(url)}: {first_line or type(exc).__name__}"
        ) from exc
    finally:
        engine.dispose()


def _migrate_server(url: str) -> None:
    """Migrate a database server's schema."""
    _on_server(url, _upgrade, transaction=True)


async def prepare_database(url: str, *, now: datetime, check: bool = True) -> str | None:
    """Create, repair or migrate the database behind `url`, in a worker thread; a notice for a
    person when start-up had to repair something (a corrupt file moved aside), else None.

    `check=False`: no integrity check of a SQLite file that opens (see `file_problem`)."""
    try:
        backend, sync_url = database_target(url)
    except (ArgumentError, ValueError) as exc:  # not a URL, or not one of ours
        raise StoreUnavailableError(f"cannot use the database {_shown_url(url)}: {exc}") from exc
    if backend == "sqlite":
        path = Path(str(make_url(sync_url).database))
        return await asyncio.to_thread(_prepare_sqlite, path, now, check=check)
    await asyncio.to_thread(_migrate_server, sync_url)
    return None


def _read_revision(conn: Connection) -> str | None:
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def _file_revision(path: Path) -> str | None:
    if not path.exists():
        raise StoreUnavailableError(f"there is no database at {path} yet")
    try:
        return _sqlite_revision(path)[1]
    except (sqlite3.Error, OSError) as exc:
        error = store_error(exc, path=path)
        if error is None:
            raise
        raise error from exc


async def schema_revision(url: str) -> str | None:
    """The schema revision the database behind `url` is at (None: it has no schema yet),
    changing nothing (`deskbell serve --check`); StoreError if it cannot be reached or read."""
    try:
        backend, sync_url = database_target(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreUnavailableError(f"cannot use the database {_shown_url(url)}: {exc}") from exc
    if backend == "sqlite":
        return await asyncio.to_thread(_file_revision, Path(str(make_url(sync_url).database)))
    return await asyncio.to_thread(_on_server, sync_url, _read_revision, transaction=False)
