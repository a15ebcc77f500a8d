"""record_change: the feed's row commits with its unit of work, and watchers wake (T1)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.models import Change
from services.views import ChangeKind

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _kinds(tx: Tx) -> list[tuple[str, int | None, int | None]]:
    rows = tx.conn.execute(
        select(Change.kind, Change.conversation_id, Change.person_id).order_by(Change.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_t1_a_recorded_change_commits_with_its_work_and_wakes_watchers(
    database: Database,
) -> None:
    woke = asyncio.Event()
    stop = await database.watch(woke.set)
    try:
        await database.write(
            lambda tx: record_change(tx, kind=ChangeKind.MESSAGE, at=AT, conversation_id=7)
        )
        await asyncio.wait_for(woke.wait(), timeout=60)
    finally:
        stop()
    assert await database.read(_kinds) == [("message", 7, None)]


async def test_t1_a_change_rolls_back_with_a_failing_unit_of_work(database: Database) -> None:
    def fail(tx: Tx) -> None:
        record_change(tx, kind=ChangeKind.SEEN, at=AT, person_id=3)
        raise RuntimeError("the work failed after recording")

    with pytest.raises(RuntimeError, match="failed after recording"):
        await database.write(fail)
    assert await database.read(_kinds) == []
