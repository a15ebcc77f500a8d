"""One background task that does its due work, then sleeps until the next due time.

The scheduler of the email fallback and the outbox both run this way (STYLE.md: durable
schedules). The sleep is capped, so a wall-clock jump or a resume from sleep is noticed within
`max_sleep_s` (E8); `wake()` cuts it short when something new arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.clock import Clock
from services.retry_log import RetryLog

__all__ = ["DueLoop"]

log = logging.getLogger(__name__)


class DueLoop:
    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        step: Callable[[], Awaitable[datetime | None]],
        max_sleep_s: float = 5.0,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`step` does what is due and returns when to look again (None: nothing known)."""
        self._name = name
        self._clock = clock
        self._step = step
        self._max_sleep_s = max_sleep_s
        self._on_stop = on_stop
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry = RetryLog(log, name)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"deskbell-{self._name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while True:
                try:
                    next_at = await self._step()
                    self._retry.succeeded()
                except Exception as exc:  # a locked or full database, a bug: retry, never die
                    self._retry.failed(exc)
                    next_at = None
                delay = self._max_sleep_s
                if next_at is not None:
                    delay = min(delay, max(0.0, (next_at - self._clock.now()).total_seconds()))
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                self._wake.clear()
        finally:
            if self._on_stop is not None:
                with contextlib.suppress(Exception):
                    await self._on_stop()
