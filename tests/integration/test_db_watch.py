"""Change notifications between processes, without polling (issue 9), on both engines.

A write in another process (a real subprocess) wakes this process's `Database.watch`
callback; an idle watcher wakes zero times and keeps no timer on the event loop.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert

from services.store.database import Database, Tx
from services.store.models import Setting
from tests.support.loop_wakeups import LoopWakeups

SETTINGS = Setting.__table__
ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0  # generous: the machine may be slow; a pass takes milliseconds
IDLE_S = 3.0

_WRITER = """
import asyncio, sys
from sqlalchemy import insert
from services.store.database import Database
from services.store.models import Setting

def put(tx, key):
    tx.conn.execute(insert(Setting.__table__).values(key=key, value="x"))
    tx.notify_after_commit(key)

async def main(url, key):
    database = await Database.open(url)
    await database.write(put, key)
    await database.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _write_in_another_process(url: str, key: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, url, key],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


class Wakes:
    """Counts callback runs; `wait()` for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._event.set()

    async def wait(self) -> None:
        async with asyncio.timeout(WAIT_S):
            await self._event.wait()
        self._event.clear()


def _live_timers() -> list[asyncio.TimerHandle]:
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return [h for h in scheduled if not h.cancelled()]


def _put(tx: Tx, key: str, notify: bool) -> None:
    tx.conn.execute(insert(SETTINGS).values(key=key, value="x"))
    if notify:
        tx.notify_after_commit(key)


async def test_another_process_write_wakes_the_watcher(
    database: Database, database_url: str
) -> None:
    wakes = Wakes()
    await database.watch(wakes)
    await asyncio.to_thread(_write_in_another_process, database_url, "from-child")
    await wakes.wait()
    assert wakes.count >= 1
    # ... and a second one again (the watch stays armed).
    await asyncio.to_thread(_write_in_another_process, database_url, "from-child-2")
    await wakes.wait()


async def test_an_idle_watcher_wakes_zero_times_and_keeps_no_timer(database: Database) -> None:
    """Idle means idle: nothing scheduled, no callback, and the loop itself asleep over
    seconds of real idleness (PostgreSQL: psycopg's own `notifies()` wakes ten times a second
    to look for Ctrl-C; the listener must wait on its socket alone)."""
    wakes = Wakes()
    await database.watch(wakes)
    for _ in range(20):  # let the listener reach its wait
        await asyncio.sleep(0)
    if sys.platform.startswith("linux"):
        assert _live_timers() == []
    with LoopWakeups() as loop_wakeups:
        await asyncio.sleep(IDLE_S)  # one wake-up: the end of this sleep
    assert loop_wakeups.count <= 2, f"the loop woke {loop_wakeups.count} times in {IDLE_S} s"
    if sys.platform.startswith("linux"):
        assert _live_timers() == []
    assert wakes.count == 0
    assert database.changes.fired == 0


async def test_own_writes_wake_only_when_they_notify(database: Database) -> None:
    wakes = Wakes()
    await database.watch(wakes)
    await database.write(_put, "quiet", False)
    await database.write(_put, "loud", True)
    await wakes.wait()
    await asyncio.sleep(IDLE_S)  # the quiet write (and the inotify echo of both) added nothing
    assert wakes.count == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the inotify path is Linux's")
async def test_sqlite_unrelated_files_in_the_folder_wake_nothing(tmp_path: Path) -> None:
    from tests.support.databases import migrate

    url = f"sqlite:///{tmp_path / 'deskbell.database'}"
    migrate(url)
    database = await Database.open(url)
    try:
        wakes = Wakes()
        await database.watch(wakes)
        for i in range(20):
            (tmp_path / "deskbell.log").write_text(f"line {i}\n")
        (tmp_path / "deskbell.db-wal").touch()  # a touch that changes no data
        await asyncio.sleep(IDLE_S)
        assert wakes.count == 0
    finally:
        await database.close()


@pytest.mark.postgres
async def test_postgres_listener_reconnects_and_signals_a_catch_up(postgres_url: str) -> None:
    import psycopg

    database = await Database.open(postgres_url)
    try:
        wakes = Wakes()
        await database.watch(wakes)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
            ).fetchall()
        assert killed == [(True,)]
        await wakes.wait()  # reconnected: NOTIFYs may have been missed, so read again
        await asyncio.to_thread(_write_in_another_process, postgres_url, "after-reconnect")
        await wakes.wait()
    finally:
        await database.close()
