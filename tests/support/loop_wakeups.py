"""How often an asyncio event loop wakes up, counted where it sleeps: its selector.

An idle loop sits in one `select()` until a file descriptor is ready or its earliest timer is
due. Each return from a `select()` that could block is one wake-up of the loop's thread,
whatever caused it (a timer, a socket, a callback from another thread); a `select(0)` (the
loop had callbacks ready) did not sleep, so it woke nothing. Used by the idle tests (issue 9):
the count covers exactly the window inside the `with` block.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from tests.support.proc_stats import sample

__all__ = ["LoopWakeups", "idle_window", "next_timer_in"]


class LoopWakeups:
    """Counts the running loop's returns from a `select()` that could block, while installed
    (a context manager)."""

    def __init__(self) -> None:
        self.count = 0
        self.timeouts: list[float | None] = []  # what each select() was asked to wait
        self._selector: Any = None
        self._select: Callable[..., Any] | None = None

    def __enter__(self) -> LoopWakeups:
        loop = asyncio.get_running_loop()
        self._selector = loop._selector  # type: ignore[attr-defined]
        self._select = self._selector.select
        original = self._select

        def select(timeout: float | None = None) -> Any:
            self.timeouts.append(timeout)
            ready = original(timeout)
            if timeout is None or timeout > 0:
                self.count += 1
            return ready

        self._selector.select = select
        return self

    def __exit__(self, *exc: object) -> None:
        if self._selector is not None:
            del self._selector.select  # back to the class's own method
            self._selector = None


def next_timer_in() -> float | None:
    """Seconds until the running loop's earliest live timer, or None when it has none."""
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    live = [h.when() for h in scheduled if not h.cancelled()]
    return min(live) - loop.time() if live else None


async def idle_window(seconds: float) -> tuple[int, int]:
    """(the loop's wake-ups, all this process's threads' context switches) over `seconds` of
    doing nothing but this sleep, whose end is one wake-up of each."""
    with LoopWakeups() as loop_wakeups:
        before = sample(os.getpid())
        await asyncio.sleep(seconds)
        after = sample(os.getpid())
    return loop_wakeups.count, after.switches_since(before)
