"""One background task that does its due work, then sleeps until the next due time.

The scheduler of the email fallback and the outbox both run this way (STYLE.md: durable
schedules). The clock owns the waiting (`Clock.sleep_until`): it sleeps until the real
deadline and no shorter, yet returns at once when the wall clock jumps, so what fell due during
a suspend or a clock change is done at once (E8); with nothing due it waits for `wake()` only.
An idle loop therefore schedules no wake-up before its next deadline (issue 9).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from services.clock import Clock
from services.retry_log import RetryLog

__all__ = ["DueLoop"]

log = logging.getLogger(__name__)


class DueLoop:
    # After a failing step: first pause and longest pause before trying again.
    RETRY_S = (5.0, 300.0)

    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        step: Callable[[], Awaitable[datetime | None]],
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`step` does what is due and returns when to look again (None: only when woken)."""
        self._name = name
        self._clock = clock
        self._step = step
        self._on_stop = on_stop
        self._wake = asyncio.Event()
        self._run_now = False
        self._soon: datetime | None = None  # the earliest run asked by `wake_within`
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._retry = RetryLog(log, name)

    def wake(self) -> None:
        """Run the step again now: something new arrived, or the machine resumed."""
        self._run_now = True
        self._wake.set()

    def wake_within(self, delay: timedelta) -> None:
        """Run the step again within `delay`: for news that cannot fall due sooner than that.
        A burst of such news costs one run, not one each (a post's deliveries are due a delay
        after it, never at once). Nothing changes when the loop runs sooner anyway."""
        at = self._clock.now() + delay
        if self._soon is None or at < self._soon:
            self._soon = at
            self._wake.set()  # a sleeping loop looks at its deadline again

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"deskbell-{self._name}")

    async def stop(self) -> None:
        """End the loop: at once while it sleeps, or when the running step returns.

        Cancelling is not enough on its own: a step can lose the cancellation (Python 3.11's
        `asyncio.wait_for`, in aiosmtplib's every read, returns its result instead of raising
        when a reply arrives in the same turn), so the loop also checks a flag.
        """
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        self._task.cancel()
        # asyncio.wait, not `await task` under suppress(CancelledError): the caller's own
        # cancellation must reach the caller.
        await asyncio.wait({self._task})
        task, self._task = self._task, None
        if not task.cancelled():
            task.result()  # what ended it, if not the stop

    async def _run(self) -> None:
        retry_s = self.RETRY_S[0]
        try:
            while not self._stopping:
                self._soon = None  # this run sees what was asked before it
                try:
                    next_at = await self._step()
                    retry_s = self.RETRY_S[0]
                    self._retry.succeeded()
                except Exception as exc:  # a locked or full database, a bug: retry, never die
                    self._retry.failed(exc)
                    next_at = self._clock.now() + timedelta(seconds=retry_s)
                    retry_s = min(retry_s * 2, self.RETRY_S[1])
                await self._sleep(next_at)
        finally:
            if self._on_stop is not None:
                with contextlib.suppress(Exception):
                    await self._on_stop()

    async def _sleep(self, next_at: datetime | None) -> None:
        """Until `next_at` or the earlier time `wake_within` asked for, or a `wake`."""
        while not self._stopping and not self._run_now:
            deadline = _earliest(next_at, self._soon)
            if deadline is not None and deadline <= self._clock.now():
                break
            await self._clock.sleep_until(deadline, self._wake)
            self._wake.clear()
            if _earliest(next_at, self._soon) == deadline:
                break  # the deadline came, or the wall clock jumped: look now (E8)
        self._run_now = False
        self._wake.clear()


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
