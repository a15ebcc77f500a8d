"""The incoming intake's look-ups read indexes, on both engines (I6, issue 9: "the incoming
sender-hold look-up is indexed"), checked with the engine's own EXPLAIN after ANALYZE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert

from services.api import Service
from services.clock import ManualClock
from services.incoming import intake
from services.incoming.decide import hold_since
from services.store.database import Tx
from services.store.models import Email
from services.store.prepared import Prepared
from tests.support.world import open_service

SENDERS = 500
PER_SENDER = 40  # 20,000 incoming mails: a busy mailbox's last days


@pytest.fixture
async def svc(database_url: str) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=ManualClock())
    yield service
    await service.close()


def _history(tx: Tx, now: datetime) -> None:
    rows = [
        {
            "direction": "in",
            "kind": "incoming",
            "status": "received",
            "uid": f"h{s}-{n}",
            "from_addr": f"sender{s}@example.org",
            "to_addrs": [],
            "created_at": now - timedelta(minutes=n * 30 + s % 30),
        }
        for s in range(SENDERS)
        for n in range(PER_SENDER)
    ]
    tx.conn.execute(insert(Email), rows)


def _plan(tx: Tx, prepared: Prepared, params: dict[str, object]) -> str:
    sql, bound = prepared.plan(tx.dialect, params).bind(params)
    explain = "EXPLAIN " if tx.is_postgres else "EXPLAIN QUERY PLAN "
    args = tuple(bound) if isinstance(bound, list) else bound
    return "\n".join(
        " ".join(map(str, row)) for row in tx.conn.exec_driver_sql(explain + sql, args)
    )


async def test_i6_the_sender_hold_look_up_reads_its_index(svc: Service) -> None:
    """After ANALYZE over 20,000 incoming mails from 500 senders, one sender's recent mail is
    read through ix_emails_sender_direction_created_at, never by scanning the log."""
    now = svc.clock.now()
    await svc.db.write(_history, now)
    await svc.db.write(lambda tx: tx.conn.exec_driver_sql("ANALYZE"))
    params = {"sender": "sender7@example.org", "since": hold_since(now)}
    plan = await svc.db.read(_plan, intake._RECENT, params)
    assert "ix_emails_sender_direction_created_at" in plan, plan
    assert "Seq Scan" not in plan, plan  # PostgreSQL
    assert "SCAN emails" not in plan.replace("USING INDEX", ""), plan  # SQLite


async def test_i2_the_token_look_up_reads_by_key(svc: Service) -> None:
    """A token's conversation, its item's other conversation and their audience: read by
    primary key and the item's index, never by scanning conversations."""
    plan = await svc.db.read(_plan, intake._THREAD_BY_CONVERSATION, {"conversation_id": 1})
    assert "Seq Scan on conversations" not in plan, plan  # PostgreSQL
    scans = [line for line in plan.splitlines() if "SCAN" in line and "USING" not in line]
    assert not scans, plan  # SQLite
