"""D8, T3: a background task that keeps failing (a locked or full database) logs one line when
it starts failing, one when the reason changes and one when it works again, never a traceback
per retry; a bug's traceback shows once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

from services.clock import ManualClock
from services.due_loop import DueLoop
from services.errors import StoreBusyError, StoreFullError


async def test_d8_a_failing_loop_logs_once_per_state_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Exception | None] = [
        *[StoreFullError("the disk holding x is full")] * 5,
        *[StoreBusyError("x is locked by another program")] * 3,
        *[RuntimeError("a bug")] * 3,
        *[None] * 3,
        StoreFullError("the disk holding x is full"),
    ]
    done = asyncio.Event()

    async def step() -> datetime | None:
        outcome = outcomes.pop(0)
        if not outcomes:
            done.set()
        if outcome is not None:
            raise outcome
        return None

    clock = ManualClock()
    loop = DueLoop(name="outbox", clock=clock, step=step)
    caplog.set_level(logging.INFO, logger="services.due_loop")
    loop.start()
    try:
        async with asyncio.timeout(60):
            while not done.is_set():
                # Past any retry pause after a failure, and a wake-up after a success.
                clock.advance(DueLoop.RETRY_S[1])
                loop.wake()
                await asyncio.sleep(0.01)
    finally:
        await loop.stop()
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("ERROR", "outbox: the disk holding x is full (retrying)", False),
        ("ERROR", "outbox: x is locked by another program (retrying)", False),
        ("ERROR", "outbox failed (retrying)", True),
        ("INFO", "outbox works again", False),
        ("ERROR", "outbox: the disk holding x is full (retrying)", False),
    ]
