"""The one source of time below app/: injected, so tests can move it. It also owns waiting.

`sleep_until(deadline, wake)` is how a background loop waits for its next deadline without
waking before it (issue 9: idle means idle) yet noticing sleep and clock jumps (E8):

- SystemClock on Linux arms a CLOCK_REALTIME timerfd at the absolute deadline, with
  TFD_TIMER_CANCEL_ON_SET, driven by `loop.add_reader`: it fires on time across a suspend (the
  wall clock runs on while the machine sleeps) and at once when the wall clock is set (NTP step,
  the user), so the caller recomputes. No asyncio timer exists while it waits.
- SystemClock elsewhere (macOS, Windows, or a Linux without timerfd) sleeps in steps of at most
  `FALLBACK_CAP_S` and returns early when the wall clock and the monotonic clock disagree (a
  jump or a sleep), the documented fallback: one cheap wake-up a minute, no database work.
- ManualClock wakes sleepers when `advance()` passes their deadline or `jump()` moves the wall
  clock, so tests move time by hand and loops react without real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services import linux

__all__ = ["FALLBACK_CAP_S", "Clock", "ManualClock", "SystemClock", "utcnow"]

log = logging.getLogger(__name__)

FALLBACK_CAP_S = 60.0
# Wall and monotonic time drifting apart by more than this during a capped sleep is a jump.
_JUMP_S = 1.0


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals; unaffected by clock jumps."""
        ...

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        """Return once the wall clock reaches `deadline`, `wake` is set, or the wall clock
        jumped (then re-read `now()` and call again). `None`: wait for `wake` only.

        It may return early, never much late; it leaves `wake` as it is (the caller clears it).
        """
        ...


async def _first(done: asyncio.Future[object], wake: asyncio.Event) -> None:
    """Wait until `done` resolves or `wake` is set, whichever comes first."""
    waiter = asyncio.ensure_future(wake.wait())
    either: set[asyncio.Future[Any]] = {done, waiter}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        done.cancel()
        # Wait for the waiter to end without taking its CancelledError for the caller's: a
        # cancellation of the caller that arrives meanwhile must still reach the caller.
        await asyncio.wait({waiter})


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        if wake.is_set():
            return
        if deadline is None:
            await wake.wait()
            return
        if linux.available():
            try:
                await self._timerfd_sleep(deadline, wake)
                return
            except OSError as exc:
                log.warning(
                    "timerfd unusable (%s); waiting in steps of %.0f s", exc, FALLBACK_CAP_S
                )
        await self._capped_sleep(deadline, wake)

    async def _timerfd_sleep(self, deadline: datetime, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        timer = linux.TimerFd()
        try:
            timer.arm(deadline.timestamp())
            done: asyncio.Future[object] = loop.create_future()

            def readable() -> None:
                outcome = timer.outcome()
                if outcome is not linux.TimerOutcome.NOT_YET and not done.done():
                    done.set_result(outcome)

            loop.add_reader(timer.fd, readable)
            try:
                await _first(done, wake)
            finally:
                loop.remove_reader(timer.fd)
        finally:
            timer.close()

    async def _capped_sleep(self, deadline: datetime, wake: asyncio.Event) -> None:
        wall, mono = self.now(), self.monotonic()
        while not wake.is_set():
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, FALLBACK_CAP_S)):
                    await wake.wait()
            drift = (self.now() - wall).total_seconds() - (self.monotonic() - mono)
            if abs(drift) > _JUMP_S:
                return  # the wall clock jumped or the machine slept: recompute


@dataclass
class ManualClock:
    """A clock that moves only when told to (tests, benchmarks)."""

    current: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    mono: float = 1000.0
    _sleepers: list[tuple[datetime | None, asyncio.Future[object]]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
        self.mono += seconds
        self._wake_sleepers(jumped=False)

    def jump(self, seconds: float) -> None:
        """A wall-clock jump (NTP, a changed time zone): monotonic time does not move."""
        self.current += timedelta(seconds=seconds)
        self._wake_sleepers(jumped=True)

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        if wake.is_set() or (deadline is not None and self.current >= deadline):
            return
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        entry = (deadline, done)
        self._sleepers.append(entry)
        try:
            await _first(done, wake)
        finally:
            self._sleepers.remove(entry)

    def _wake_sleepers(self, *, jumped: bool) -> None:
        for deadline, done in list(self._sleepers):
            if deadline is None or done.done():
                continue
            if jumped or self.current >= deadline:
                loop = done.get_loop()
                if _running_loop() is loop:
                    done.set_result(None)
                else:  # moved from another thread: resolve on the sleeper's loop
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(_resolve, done)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(done: asyncio.Future[object]) -> None:
    if not done.done():
        done.set_result(None)


def utcnow() -> datetime:
    """For app/ only: everything below takes a Clock."""
    return datetime.now(UTC)
