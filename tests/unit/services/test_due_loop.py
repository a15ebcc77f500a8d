"""DueLoop and the clocks' sleep_until: idle means idle, deadlines are met (E8, issue 9)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC, datetime, timedelta

import pytest

from services.clock import ManualClock, SystemClock
from services.due_loop import DueLoop

WAIT_S = 60.0  # generous: a pass takes milliseconds


def _live_timers() -> list[asyncio.TimerHandle]:
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return [h for h in scheduled if not h.cancelled()]


class Steps:
    """A DueLoop step that returns the given next times and signals each run."""

    def __init__(self, *answers: datetime | None) -> None:
        self.answers = list(answers)
        self.runs = 0
        self.ran = asyncio.Event()

    async def __call__(self) -> datetime | None:
        self.runs += 1
        self.ran.set()
        return self.answers.pop(0) if self.answers else None

    async def next_run(self) -> None:
        async with asyncio.timeout(WAIT_S):
            await self.ran.wait()
        self.ran.clear()


async def _settle() -> None:
    """Let the loop's task reach its wait (a few loop turns, no time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.parametrize("deadline_in_s", [None, 3600.0])
async def test_e8_an_idle_app_schedules_no_wake_up_before_its_next_deadline(
    deadline_in_s: float | None,
) -> None:
    """Issue 9: nothing due (or due in an hour) means no timer on the event loop at all."""
    clock = SystemClock()
    due = None if deadline_in_s is None else clock.now() + timedelta(seconds=deadline_in_s)
    steps = Steps(due)
    loop = DueLoop(name="test", clock=clock, step=steps)
    loop.start()
    try:
        await steps.next_run()
        await _settle()
        if sys.platform.startswith("linux") or deadline_in_s is None:
            assert _live_timers() == []
        assert steps.runs == 1
    finally:
        await loop.stop()


async def test_e8_wake_runs_the_step_again_at_once() -> None:
    steps = Steps()
    loop = DueLoop(name="test", clock=SystemClock(), step=steps)
    loop.start()
    try:
        await steps.next_run()
        loop.wake()
        await steps.next_run()
        assert steps.runs == 2
    finally:
        await loop.stop()


async def test_e8_a_manual_clock_moves_the_loop_without_real_waiting() -> None:
    clock = ManualClock()
    steps = Steps(clock.now() + timedelta(seconds=60), None)
    loop = DueLoop(name="test", clock=clock, step=steps)
    loop.start()
    try:
        await steps.next_run()
        clock.advance(59)
        await _settle()
        assert steps.runs == 1  # not yet due
        clock.advance(1)
        await steps.next_run()
        assert steps.runs == 2
    finally:
        await loop.stop()


async def test_e8_a_wall_clock_jump_wakes_sleepers_to_recompute() -> None:
    clock = ManualClock()
    steps = Steps(clock.now() + timedelta(hours=2))
    loop = DueLoop(name="test", clock=clock, step=steps)
    loop.start()
    try:
        await steps.next_run()
        clock.jump(-30)  # backwards: the deadline is further away, but the loop re-checks
        await steps.next_run()
        assert steps.runs == 2
    finally:
        await loop.stop()


async def test_e1_news_within_a_gap_costs_one_run_for_a_burst() -> None:
    """Issue 9: `wake_within` (a post's news) runs the step once within the gap, however
    many posts came: not once per post, and not before the gap is over."""
    clock = ManualClock()
    steps = Steps(None, None)
    loop = DueLoop(name="test", clock=clock, step=steps)
    loop.start()
    try:
        await steps.next_run()
        for _ in range(50):
            loop.wake_within(timedelta(seconds=0.2))
            await _settle()
        assert steps.runs == 1
        clock.advance(0.2)
        await steps.next_run()
        await _settle()
        assert steps.runs == 2
    finally:
        await loop.stop()


async def test_e1_news_never_postpones_a_sooner_deadline_and_wake_is_at_once() -> None:
    """Issue 9: a loop due in 0.1 s still runs then after `wake_within(1 s)`; `wake` runs it
    at once, whatever was asked before."""
    clock = ManualClock()
    steps = Steps(clock.now() + timedelta(seconds=0.1), None, None)
    loop = DueLoop(name="test", clock=clock, step=steps)
    loop.start()
    try:
        await steps.next_run()
        loop.wake_within(timedelta(seconds=1))
        clock.advance(0.1)
        await steps.next_run()
        assert steps.runs == 2
        loop.wake_within(timedelta(seconds=1))
        await _settle()
        loop.wake()
        await steps.next_run()
        assert steps.runs == 3
    finally:
        await loop.stop()


async def test_a_failing_step_is_retried_after_a_pause() -> None:
    clock = ManualClock()
    calls = 0
    ran = asyncio.Event()

    async def failing() -> datetime | None:
        nonlocal calls
        calls += 1
        ran.set()
        raise RuntimeError("boom")

    loop = DueLoop(name="test", clock=clock, step=failing)
    loop.start()
    try:
        async with asyncio.timeout(WAIT_S):
            await ran.wait()
        ran.clear()
        clock.advance(DueLoop.RETRY_S[0])
        async with asyncio.timeout(WAIT_S):
            await ran.wait()
        assert calls == 2
    finally:
        await loop.stop()


async def test_manual_clock_sleep_until_returns_at_the_deadline_or_on_wake() -> None:
    clock = ManualClock()
    wake = asyncio.Event()
    sleeper = asyncio.create_task(clock.sleep_until(clock.now() + timedelta(seconds=10), wake))
    await _settle()
    assert not sleeper.done()
    clock.advance(10)
    async with asyncio.timeout(WAIT_S):
        await sleeper
    sleeper = asyncio.create_task(clock.sleep_until(None, wake))
    await _settle()
    assert not sleeper.done()
    wake.set()
    async with asyncio.timeout(WAIT_S):
        await sleeper


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")
async def test_e8_system_clock_timerfd_fires_at_a_deadline_one_second_ahead() -> None:
    """A real CLOCK_REALTIME timerfd (absolute, cancelled on clock set) wakes the sleeper at
    its deadline, never before, with no asyncio timer."""
    clock = SystemClock()
    deadline = datetime.now(UTC) + timedelta(seconds=1)
    sleeper = asyncio.create_task(clock.sleep_until(deadline, asyncio.Event()))
    await _settle()
    assert _live_timers() == []
    async with asyncio.timeout(WAIT_S):
        await sleeper
    assert datetime.now(UTC) >= deadline


async def test_system_clock_wake_cuts_the_sleep_short() -> None:
    clock = SystemClock()
    wake = asyncio.Event()
    sleeper = asyncio.create_task(clock.sleep_until(clock.now() + timedelta(days=1), wake))
    await _settle()
    wake.set()
    async with asyncio.timeout(WAIT_S):
        await sleeper


async def test_system_clock_a_past_deadline_returns_at_once() -> None:
    clock = SystemClock()
    async with asyncio.timeout(WAIT_S):
        await clock.sleep_until(clock.now() - timedelta(seconds=5), asyncio.Event())


async def test_t3_stop_ends_the_loop_even_when_a_step_loses_the_cancellation() -> None:
    """T3: `deskbell serve` must end on SIGTERM. Python 3.11's `asyncio.wait_for` (inside
    aiosmtplib's every read) returns its result instead of raising when a reply and the
    cancellation arrive in the same turn, so a step may swallow the cancellation that stops
    the loop; the loop must stop anyway instead of sleeping on forever."""
    entered = asyncio.Event()

    async def step() -> datetime | None:
        entered.set()
        # What wait_for does when its future completed as it was cancelled:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return None

    loop = DueLoop(name="swallowing", clock=ManualClock(), step=step)
    loop.start()
    async with asyncio.timeout(WAIT_S):
        await entered.wait()
    stopper = asyncio.create_task(loop.stop())
    # Not `timeout(loop.stop())`: the question is whether stop() ends, and it must not be able
    # to answer by swallowing the timeout's cancellation.
    done, _ = await asyncio.wait({stopper}, timeout=WAIT_S)
    assert done == {stopper}, "stop() still waits for a loop that lost its cancellation"
    await stopper


async def test_stop_leaves_its_callers_cancellation_alone() -> None:
    """A caller that gives up on stop() (its own timeout) is told so, not returned to as if
    the loop had ended; stop() can then be called again."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def step() -> datetime | None:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await release.wait()  # and then takes its time
        return None

    loop = DueLoop(name="slow to stop", clock=ManualClock(), step=step)
    loop.start()
    async with asyncio.timeout(WAIT_S):
        await entered.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):  # the caller's patience, not a measured duration
            await loop.stop()
    release.set()
    async with asyncio.timeout(WAIT_S):
        await loop.stop()


@pytest.mark.parametrize("turns", range(8))
async def test_t3_a_sleep_cancelled_as_its_deadline_passes_ends_cancelled(turns: int) -> None:
    """Cancelling a sleeper in any loop turn after its deadline passed either finds it done
    or ends it cancelled: the clock never swallows the cancellation of its caller."""
    clock = ManualClock()
    sleeper = asyncio.create_task(
        clock.sleep_until(clock.now() + timedelta(seconds=1), asyncio.Event())
    )
    await _settle()
    clock.advance(1)
    for _ in range(turns):
        await asyncio.sleep(0)
    if sleeper.cancel():
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(WAIT_S):
                await sleeper
