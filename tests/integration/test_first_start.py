"""T1, D8: processes starting at once on a new database migrate it once and seed it once.

Each start runs `Service.open` in its own thread with its own event loop, engines and
connections, so the starts meet only in the database, as separate processes do (a test with
processes proper is in tests/e2e).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.api import Service
from services.clock import ManualClock
from services.store.database import Database, Tx
from tests.support.postgres import PostgresCluster

STARTS = 6


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it yet, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'deskbell.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database(template="template0")
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


def _seeded(tx: Tx) -> dict[str, int]:
    def count(sql: str) -> int:
        return int(tx.conn.exec_driver_sql(sql).scalar_one())

    return {
        "schema versions": count("SELECT count(*) FROM alembic_version"),
        "signing keys": count("SELECT count(*) FROM settings WHERE key = 'secret.token_key'"),
        "templates": count("SELECT count(*) FROM email_templates"),
        "system emails": count("SELECT count(*) FROM system_emails"),
        "automations": count("SELECT count(*) FROM automations"),
    }


async def _start(url: str) -> bytes:
    """One start: open the workspace, read its signing key, close."""
    service = await Service.open(url=url, clock=ManualClock())
    try:
        return service.token_key
    finally:
        await service.close()


def _starts_at_once(url: str, count: int) -> list[bytes | BaseException]:
    ready = threading.Barrier(count)
    results: list[bytes | BaseException] = [b""] * count

    def run(i: int) -> None:
        ready.wait()
        try:
            results[i] = asyncio.run(_start(url))
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def _counts(url: str) -> dict[str, int]:
    db = await Database.open(url)
    try:
        return await db.read(_seeded)
    finally:
        await db.close()


async def test_t1_simultaneous_first_starts_migrate_and_seed_once(
    empty_url: str, tmp_path: Path
) -> None:
    results = await asyncio.to_thread(_starts_at_once, empty_url, STARTS)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(set(results)) == 1  # every process signs with the one key that was stored
    alone = f"sqlite:///{tmp_path / 'alone.db'}"
    await _start(alone)
    expected = await _counts(alone)
    assert expected["schema versions"] == expected["signing keys"] == 1
    assert await _counts(empty_url) == expected
