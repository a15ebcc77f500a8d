"""Issue 9 (idle means idle): a started service with nothing due before its next real deadline
schedules no wake-up before it, on SQLite and on PostgreSQL.

The service runs whole (change feed and its watcher, fallback scheduler, outbox, upkeep) on
the system clock, with a fallback email due in two hours. Once its start-up work is over, an
idle window is measured where the process sleeps: its event loop's returns from `select()`
and the context switches of all its threads (/proc). The only timers left on the loop are real
deadlines (the hourly upkeep); the email's deadline waits on a timerfd, not on the loop.
"""

from __future__ import annotations

import asyncio

from services.api import ConversationKind, Service
from services.clock import SystemClock
from services.email_log import PURGE_EVERY
from tests.support.loop_wakeups import idle_window, next_timer_in
from tests.support.world import seed

IDLE_S = 3.0
SETTLE_S = 60.0  # generous: start-up work on a machine ten times slower than usual
# The end of the test's own sleep is one wake-up of one thread; a little room for what no
# program controls (a signal, the kernel's housekeeping of a thread).
MAX_WAKEUPS = 3


async def _settle() -> bool:
    """Wait until start-up work is over: one quiet half second; False if it never came."""
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while asyncio.get_running_loop().time() < deadline:
        if max(await idle_window(0.5)) <= 1:
            return True
    return False


async def test_issue9_an_idle_service_schedules_no_wake_up_before_its_next_deadline(
    database_url: str,
) -> None:
    service = await Service.open(url=database_url, clock=SystemClock())
    try:
        world = await seed(service, delay_s=7200)  # a fallback email falls due in 2 hours
        await service.post(
            author="bob@example.com",
            text="unseen",
            item_number=world.item,
            kind=ConversationKind.INTERNAL,
        )
        await service.start()
        settled = await _settle()
        loop_wakeups, switches = await idle_window(IDLE_S)
        never = "" if settled else f" (never quiet for half a second in {SETTLE_S:.0f} s)"
        assert loop_wakeups <= MAX_WAKEUPS, f"the event loop woke {loop_wakeups} times{never}"
        assert switches <= MAX_WAKEUPS, f"the threads switched {switches} times{never}"
        soonest = next_timer_in()
        assert soonest is None or soonest > PURGE_EVERY.total_seconds() / 2, (
            f"a timer {soonest:.3f} s away, before any real deadline"
        )
    finally:
        await service.close()
