"""The database worker (issue 9): one hop per unit of work, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Integer, Text, cast, func, insert, select, text, update

from services.errors import StoreBusyError, StoreConflictError, StoreUnreachableError
from services.store.database import Database, Tx, database_target
from services.store.models import Person, Setting

SETTINGS = Setting.__table__
PERSONS = Person.__table__
ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Stored:
    key: str
    value: str
    thread: str


def _put(tx: Tx, key: str, value: str) -> Stored:
    tx.conn.execute(insert(SETTINGS).values(key=key, value=value))
    return Stored(key, value, threading.current_thread().name)


def _get(tx: Tx, key: str) -> str | None:
    return tx.conn.execute(select(SETTINGS.c.value).where(SETTINGS.c.key == key)).scalar()


def test_urls_of_both_engines_map_to_the_sync_drivers() -> None:
    assert database_target("sqlite:///a/b.database") == (
        "sqlite",
        "sqlite+pysqlite:///a/b.database",
    )
    assert (
        database_target("sqlite+aiosqlite:///a/b.database")[1] == "sqlite+pysqlite:///a/b.database"
    )
    for url in ("postgresql://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"):
        assert database_target(url) == ("postgresql", "postgresql+psycopg://u@h/d")
    with pytest.raises(ValueError, match="in-memory"):
        database_target("sqlite://")
    with pytest.raises(ValueError, match="unsupported"):
        database_target("mysql://u@h/d")


async def test_a_unit_of_work_runs_whole_in_a_worker_thread_and_commits(database: Database) -> None:
    stored = await database.write(_put, "k", "v")
    assert stored.thread.startswith("deskbell-db-")
    assert stored.thread != threading.current_thread().name
    assert await database.read(_get, "k") == "v"


async def test_an_error_in_the_work_rolls_everything_back(database: Database) -> None:
    def half_then_fail(tx: Tx) -> None:
        _put(tx, "half", "done")
        raise LookupError("the work changed its mind")

    with pytest.raises(LookupError, match="changed its mind"):
        await database.write(half_then_fail)
    assert await database.read(_get, "half") is None


async def test_a_duplicate_is_a_conflict_and_nothing_is_kept(database: Database) -> None:
    await database.write(_put, "dup", "first")

    def two(tx: Tx) -> None:
        _put(tx, "other", "x")
        _put(tx, "dup", "second")

    with pytest.raises(StoreConflictError, match="clashes"):
        await database.write(two)
    assert await database.read(_get, "other") is None
    assert await database.read(_get, "dup") == "first"


async def test_the_orm_session_is_flushed_before_commit_and_instances_stay_inside(
    database: Database,
) -> None:
    def add(tx: Tx) -> int:
        person = Person(email="s@x", name="S", kind="user", created_at=datetime.now(UTC))
        tx.session.add(person)
        tx.session.flush()
        # The same transaction sees the session's row through Core.
        return int(tx.conn.execute(select(func.count()).select_from(PERSONS)).scalar_one())

    assert await database.write(add) == 1

    def leak(tx: Tx) -> Person:
        person = tx.session.get(Person, 1)
        assert person is not None
        person.name = "Changed"
        return person

    with pytest.raises(TypeError, match="ORM instance"):
        await database.write(leak)
    names = await database.read(lambda tx: tx.conn.execute(select(PERSONS.c.name)).scalars().all())
    assert names == ["S"]  # the leaking unit of work was rolled back


async def test_a_read_cannot_write(database: Database) -> None:
    with pytest.raises(Exception, match=r"(?i)read.?only"):
        await database.read(_put, "r", "x")
    with pytest.raises(RuntimeError, match="cannot notify"):
        await database.read(lambda tx: tx.notify_after_commit())


async def test_a_notification_payload_must_fit_postgresql_on_both_engines(
    database: Database,
) -> None:
    await database.write(lambda tx: tx.notify_after_commit("x" * 7999))
    with pytest.raises(ValueError, match="8,000 bytes"):
        await database.write(lambda tx: tx.notify_after_commit("x" * 8000))


async def test_writes_of_many_tasks_all_commit(database: Database) -> None:
    await database.write(_put, "n", "0")

    def bump(tx: Tx) -> None:
        # One atomic statement: correct under PostgreSQL's READ COMMITTED as under SQLite's lock.
        tx.conn.execute(
            update(SETTINGS)
            .where(SETTINGS.c.key == "n")
            .values(value=cast(cast(SETTINGS.c.value, Integer) + 1, Text))
        )

    await asyncio.gather(*(database.write(bump) for _ in range(40)))
    assert await database.read(_get, "n") == "40"


async def test_sqlite_another_process_holding_the_lock_gives_busy(tmp_path: Path) -> None:
    """D8: a database that is locked is busy, not damaged: StoreBusyError after the timeout."""
    from tests.support.databases import migrate

    url = f"sqlite:///{tmp_path / 'busy.database'}"
    migrate(url)
    database = await Database.open(url, busy_timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "busy.database", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusyError):
            await database.write(_put, "k", "v")
        other.execute("ROLLBACK")
        await database.write(_put, "k", "v")
    finally:
        other.close()
        await database.close()


def test_sqlite_does_not_load_postgresql(tmp_path: Path) -> None:
    """Issue 9 (start-up): the PostgreSQL dialect and psycopg load only for PostgreSQL."""
    code = (
        "import asyncio, sys\n"
        "from services.store.database import Database\n"
        "async def main():\n"
        f"    database = await Database.open('sqlite:///{tmp_path / 'x.database'}')\n"
        "    await database.write(lambda tx: tx.conn.exec_driver_sql('SELECT 1'))\n"
        "    await database.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', 'asyncpg',"
        " 'sqlalchemy.dialects.postgresql'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.postgres
async def test_postgres_a_killed_connection_is_replaced_without_failing_the_work(
    postgres_url: str,
) -> None:
    import psycopg

    database = await Database.open(postgres_url, pool_size=1)
    try:
        await database.write(_put, "before", "1")
        (pid,) = database.own_backend_pids()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await database.write(_put, "after", "2")
        assert await database.read(_get, "after") == "2"
        assert database.own_backend_pids() != {pid}
    finally:
        await database.close()


@pytest.mark.postgres
async def test_postgres_a_deadlock_runs_the_loser_again(postgres_url: str) -> None:
    database = await Database.open(postgres_url, pool_size=2)
    barrier = threading.Barrier(2, timeout=60)
    attempts: Counter[str] = Counter()
    try:
        await database.write(_put, "a", "0")
        await database.write(_put, "b", "0")

        def cross(tx: Tx, first: str, second: str) -> None:
            attempts[first] += 1
            tx.conn.execute(update(SETTINGS).where(SETTINGS.c.key == first).values(value=first))
            if attempts[first] == 1:
                barrier.wait()  # both hold their first row: each now waits for the other's
            tx.conn.execute(update(SETTINGS).where(SETTINGS.c.key == second).values(value=first))

        await asyncio.gather(database.write(cross, "a", "b"), database.write(cross, "b", "a"))
        assert sum(attempts.values()) == 3  # one of the two ran again after the deadlock
    finally:
        await database.close()


async def test_postgres_an_unreachable_server_is_a_connection_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnreachableError) as caught:
        await Database.open(f"postgresql://postgres@/x?host={tmp_path}&port=1")
    assert isinstance(caught.value, ConnectionError)


async def test_text_statements_work_through_the_core_connection(database: Database) -> None:
    assert await database.read(lambda tx: tx.conn.execute(text("SELECT 1")).scalar()) == 1
