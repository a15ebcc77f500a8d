"""I1, issue 9: one process of a workspace reads a mailbox at a time, on both engines; when it
stops, another takes the mailbox over without waiting for the lease to run out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from services.api import Service
from services.clock import ManualClock
from tests.support.service_url import service_url
from tests.support.smtpd import free_port


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):  # generous: the machine may be shared and slow
        while not condition():  # noqa: ASYNC110 - a polled condition, not an event
            await asyncio.sleep(0.02)


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[list[Service]]:
    clock = ManualClock()
    opened = [await Service.open(url=service_url(database_url), clock=clock) for _ in range(3)]
    try:
        # A mailbox nobody answers for: each reader keeps trying, which is all this needs.
        # Each process reads the settings at start: set them in each, as a restart would.
        port = str(free_port())
        for service in opened:
            for key, value in (
                ("imap.port", port),
                ("imap.security", "none"),
                ("imap.username", "desk"),
                ("imap.host", "127.0.0.1"),
            ):
                await service.set_config(key, value)
        yield opened
    finally:
        for service in opened:
            await service.close()


async def test_i1_one_process_reads_the_mailbox_and_another_takes_over(
    services: list[Service],
) -> None:
    for service in services:
        assert await service.incoming.start(poll_interval_s=60)
    await _until(lambda: any(s.incoming.reader is not None for s in services))
    await asyncio.sleep(0.3)  # the others had their chance to (wrongly) read too
    readers = [s for s in services if s.incoming.reader is not None]
    assert len(readers) == 1
    await readers[0].incoming.stop()
    rest = [s for s in services if s is not readers[0]]
    await _until(lambda: any(s.incoming.reader is not None for s in rest))
    await asyncio.sleep(0.3)
    assert sum(s.incoming.reader is not None for s in services) == 1
