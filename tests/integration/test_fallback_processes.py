"""The email fallback's scheduler with several processes on one database, on both engines
(E1, E2, issue 9): a (recipient, conversation) email is queued once, however the schedulers
interleave; the due query is served by its index whatever the table's statistics say."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import select, text

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.store.database import Tx
from services.store.models import Email
from tests.support.service_url import service_url

FOLLOWERS = [f"agent{n}@example.com" for n in range(8)]
ITEMS = 6
SCHEDULERS = 4


async def _open(url: str, clock: ManualClock) -> Service:
    return await Service.open(url=service_url(url), clock=clock)


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[list[Service]]:
    """Processes on one database, opened once the first has set it up (settings are read
    at start)."""
    clock = ManualClock()
    first = await _open(database_url, clock)
    opened = [first]
    try:
        await first.set_config("unseen_delay_s", "60")
        await first.add_person(email="lead@example.com", name="Lead")
        for address in FOLLOWERS:
            await first.add_person(email=address, name=address.split("@")[0])
        for n in range(ITEMS):
            item = await first.create_item(title=f"Item {n}", followers=FOLLOWERS)
            await first.post(
                author="lead@example.com",
                text=f"news {n}",
                item_number=item.number,
                kind=ConversationKind.INTERNAL,
            )
        for _ in range(SCHEDULERS - 1):
            opened.append(await _open(database_url, clock))
        yield opened
    finally:
        for service in opened:
            await service.close()


def _queued_per_group(tx: Tx) -> Counter[tuple[int | None, int | None]]:
    rows = tx.conn.execute(
        select(Email.recipient_id, Email.conversation_id).where(Email.kind == "notification")
    )
    return Counter((r, c) for r, c in rows)


async def test_e2_schedulers_of_several_processes_queue_each_email_once(
    services: list[Service],
) -> None:
    """E2, issue 9: schedulers of four processes deciding at the same moment queue one email
    per recipient and conversation, never two."""
    first = services[0]
    assert isinstance(first.clock, ManualClock)
    first.clock.advance(61)
    await asyncio.gather(*(s.run_scheduler_once() for s in services for _ in range(2)))
    queued = await first.db.read(_queued_per_group)
    assert len(queued) == ITEMS * len(FOLLOWERS)
    assert set(queued.values()) == {1}, [g for g, n in queued.items() if n > 1]


def _due_plan(tx: Tx, now: datetime) -> str:
    """What the engine does for the scheduler's due query, after fresh statistics."""
    from services.fallback import _DUE_POSTGRES, _DUE_SQLITE, _due

    _due(tx, now)  # as the scheduler runs it (on PostgreSQL this also sets its planner flags)
    lines = []
    for prepared in _DUE_POSTGRES if tx.is_postgres else _DUE_SQLITE:
        sql, params = prepared.plan(tx.dialect, {"b_now": now}).bind({"b_now": now})
        explain = "EXPLAIN " if tx.is_postgres else "EXPLAIN QUERY PLAN "
        lines += [
            " ".join(map(str, row))
            for row in tx.conn.exec_driver_sql(
                explain + sql, tuple(params) if isinstance(params, list) else params
            )
        ]
    return "\n".join(lines)


def _history(tx: Tx) -> None:
    """Every delivery so far handed to an email, as after months of use."""
    tx.conn.execute(text("UPDATE deliveries SET state = 'emailed'"))


async def test_e1_the_due_query_reads_its_index_whatever_the_statistics(
    services: list[Service],
) -> None:
    """Issue 9: after ANALYZE over a history of handled deliveries, the due query and the
    next due time are still read from the index of pending deliveries, not by a scan."""
    first = services[0]
    await first.db.write(_history)
    await first.post(
        author="lead@example.com", text="one more", item_number=1, kind=ConversationKind.INTERNAL
    )
    await first.db.write(lambda tx: tx.conn.exec_driver_sql("ANALYZE"))
    plan = await first.db.read(_due_plan, first.clock.now())
    assert "ix_deliveries_pending_due" in plan, plan
    assert "Seq Scan" not in plan, plan  # PostgreSQL
    sqlite_reads = [
        line for line in plan.splitlines() if " deliveries" in line and "Index" not in line
    ]
    assert all("USING" in line for line in sqlite_reads), plan  # SQLite: no table scan
