"""The outbox's claims on both engines (T2, E7, issue 9): one atomic claim statement, leases on
the database's clock, a claim never shared by two senders however they interleave."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.api import Service
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.store.database import Tx
from services.store.email_bodies import store_bodies
from services.store.models import Email
from tests.support.service_url import service_url

EMAILS = 300


def _queue(tx: Tx, count: int, created: ManualClock) -> None:
    now = created.now()
    emails = [
        Email(
            direction="out",
            kind="system",
            status=EmailStatus.QUEUED.value,
            uid=uuid.uuid4().hex,
            from_addr="desk@example.com",
            to_addrs=[f"r{i}@example.com"],
            created_at=now,
        )
        for i in range(count)
    ]
    tx.session.add_all(emails)
    tx.session.flush()
    store_bodies(tx, [(e.id, b"Subject: x\r\n\r\nx\r\n") for e in emails])


async def _open(url: str) -> Service:
    return await Service.open(url=service_url(url), clock=ManualClock())


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[list[Service]]:
    opened = [await _open(database_url), await _open(database_url)]
    try:
        yield opened
    finally:
        for service in opened:
            await service.close()


async def test_t2_concurrent_claims_never_take_a_row_twice(services: list[Service]) -> None:
    """T2: two senders (each with its own connections) claiming at once, many times over,
    take every due email exactly once."""
    first, second = services
    await first.db.write(_queue, EMAILS, first.clock)
    taken: Counter[int] = Counter()

    async def drain(service: Service) -> None:
        while batch := await service.outbox.claim(limit=7):
            taken.update(e.id for e in batch)
            assert all(e.claimed_by.startswith(service.outbox.owner) for e in batch)

    await asyncio.gather(*(drain(s) for s in (first, second, first, second)))
    assert len(taken) == EMAILS
    assert set(taken.values()) == {1}


@pytest.mark.postgres
async def test_t2_a_lease_runs_on_the_database_clock(postgres_url: str) -> None:
    """Issue 9: a sender whose own clock runs an hour ahead does not take over an email
    another sender holds: the lease is compared against the database server's clock."""
    behind = await _open(postgres_url)
    ahead = await _open(postgres_url)
    try:
        ahead.clock.advance(3600)  # type: ignore[attr-defined]
        await behind.db.write(_queue, 3, behind.clock)
        held = await behind.outbox.claim()
        assert len(held) == 3
        assert await ahead.outbox.claim() == []
        # Its next look is when the lease ends, told on its own clock (an hour ahead too).
        next_at = await ahead.outbox.next_attempt_at()
        lease = timedelta(seconds=int(behind.config("outbox.lease_s")))
        assert next_at is not None
        assert abs(next_at - (ahead.clock.now() + lease)) < timedelta(seconds=60)
    finally:
        await behind.close()
        await ahead.close()
