"""Getting a damaged database back (D8): `deskbell rescue FILE`.

A database that fails its integrity check is moved aside at start (`db.py`) and Deskbell
starts with an empty one. This copies every row that can still be read from the file set
aside into a new database of the same schema, and puts it in place of the database in the same
folder; that one is kept aside too, so nothing is deleted. Rows on a damaged page are lost; the
rest of each table is read from both ends around the damage, as SQLite's own `.dump` does.

Works on a copy: the file set aside stays exactly as it was.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.errors import InputError, StoreBusyError, StoreCorruptError, quoted
from services.store.db import DB_FILENAME, decode_text
from services.store.failures import store_error

__all__ = ["RescueReport", "rescue_database"]


@dataclass(frozen=True, slots=True)
class RescueReport:
    database: Path  # where the rescued data now is
    replaced: Path | None  # where the database it replaced was put, if there was one
    rows: int
    tables: int
    damaged_tables: tuple[str, ...]  # tables with rows that could not be read


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[tuple[object, ...]]:
    """Every readable row: forwards up to the damage, then backwards down to it; raises
    _Damaged after the last one if there was damage."""
    read_to: object = None
    try:
        for row in conn.execute(f"SELECT rowid, * FROM {_quote(table)} ORDER BY rowid"):
            read_to = row[0]
            yield row[1:]
    except sqlite3.DatabaseError:
        after, params = ("", ()) if read_to is None else (" WHERE rowid > ?", (read_to,))
        backwards = f"SELECT rowid, * FROM {_quote(table)}{after} ORDER BY rowid DESC"
        with contextlib.suppress(sqlite3.DatabaseError):
            for row in conn.execute(backwards, params):
                yield row[1:]
        raise _Damaged(table) from None


class _Damaged(Exception):
    """Some rows of the table could not be read."""


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> tuple[int, int, list[str]]:
    try:
        schema = source.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table' DESC"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(f"nothing can be read from it: {exc}") from exc
    for _kind, _name, sql in schema:  # tables first, then their indexes (duplicates ignored)
        target.execute(sql)
    rows = 0
    damaged: list[str] = []
    tables = [name for kind, name, _ in schema if kind == "table"]
    for table in tables:
        width = len(source.execute(f"PRAGMA table_info({_quote(table)})").fetchall())
        insert = f"INSERT OR IGNORE INTO {_quote(table)} VALUES ({', '.join('?' * width)})"
        try:
            for row in _rows(source, table):
                rows += target.execute(insert, row).rowcount
        except _Damaged:
            damaged.append(table)
    return rows, len(tables), damaged


def _check_unused(database: Path) -> None:
    """Refuse while Deskbell (or anything) has the database open: it would be replaced under
    it. An exclusive lock cannot be had while another connection is open in WAL mode."""
    if not database.exists():
        return
    conn = sqlite3.connect(database, timeout=0.5, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise StoreBusyError(
            f"{database} is in use: quit Deskbell (and any deskbell serve) first, then try again"
        ) from exc
    finally:
        conn.close()


def rescue_database(damaged: Path, *, now: datetime) -> RescueReport:
    """Rescue `damaged` into `deskbell.db` of its folder (see the module docstring)."""
    try:
        return _rescue(damaged, now)
    except (OSError, sqlite3.Error) as exc:  # a full disk, a read-only folder
        error = store_error(exc, path=damaged.parent / DB_FILENAME)
        if error is None:
            raise
        raise error from exc


def _rescue(damaged: Path, now: datetime) -> RescueReport:
    try:
        is_file = damaged.is_file()
    except (OSError, ValueError):  # a name too long, a NUL
        is_file = False
    if not is_file:
        raise InputError(f"{quoted(str(damaged))} is not a file")
    folder = damaged.parent
    database = folder / DB_FILENAME
    if damaged.resolve() == database.resolve():
        raise InputError(f"{damaged} is the database in use; give the file that was moved aside")
    _check_unused(database)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    work = folder / f"{DB_FILENAME}.rescue-{stamp}"
    copy = work.with_name(work.name + "-source")
    for suffix in ("", "-wal"):  # a copy, so the file set aside stays as it was
        src = damaged.with_name(damaged.name + suffix)
        if src.exists():
            shutil.copyfile(src, copy.with_name(copy.name + suffix))
    try:
        with (
            contextlib.closing(sqlite3.connect(copy)) as source,
            contextlib.closing(sqlite3.connect(work)) as target,
        ):
            source.text_factory = decode_text  # damaged text as U+FFFD, as Deskbell reads it
            with target:
                rows, tables, damaged_tables = _copy(source, target)
    except BaseException:
        work.unlink(missing_ok=True)
        raise
    finally:
        for suffix in ("", "-wal", "-shm"):
            copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    replaced = None
    if database.exists():
        replaced = folder / f"{DB_FILENAME}.replaced-{stamp}"
        for suffix in ("", "-wal", "-shm"):
            src = database.with_name(database.name + suffix)
            if src.exists():
                shutil.move(src, replaced.with_name(replaced.name + suffix))
    shutil.move(work, database)
    return RescueReport(
        database=database,
        replaced=replaced,
        rows=rows,
        tables=tables,
        damaged_tables=tuple(damaged_tables),
    )
