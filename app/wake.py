"""E8: notice a resume from sleep (or a clock jump) and wake the service at once.

While a machine sleeps, the monotonic clock stands still on Linux and macOS but the wall clock
runs on; on Windows both run, but a 10 s timer then fires far too late. Either gap means the
deadlines the service sleeps on may have passed unnoticed (Vorta's wake-gap check).

On Linux, logind says so itself: `PrepareForSleep(false)` on the system bus when the machine
resumes. Listening to it costs nothing while idle. Where logind cannot be reached (a container,
a desktop without it), the kernel says so too: a CLOCK_REALTIME timerfd with
TFD_TIMER_CANCEL_ON_SET is cancelled when the wall clock is set and on every resume
(`timekeeping_resume` calls `timerfd_resume`), so one armed far ahead wakes nothing until then.
Only where neither exists (macOS, Windows) do the clocks get read every 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from jeepney import MatchRule, message_bus
from jeepney.io.asyncio import DBusRouter, Proxy, open_dbus_connection
from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal

from services import linux
from services.clock import Clock

__all__ = [
    "CHECK_EVERY_S",
    "GAP_S",
    "KERNEL_ARM_S",
    "LOGIND",
    "KernelTimer",
    "Tick",
    "WakeWatch",
    "kernel_timer",
    "resumed",
]

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0
GAP_S = 5.0
KERNEL_ARM_S = 7 * 24 * 3600.0  # how far ahead the kernel's timer is armed (then re-armed)
LOGIND = "org.freedesktop.login1"


def _prepare_for_sleep(sender: str | None) -> MatchRule:
    return MatchRule(
        type="signal",
        sender=sender,
        path="/org/freedesktop/login1",
        interface=f"{LOGIND}.Manager",
        member="PrepareForSleep",
    )


# The bus checks the sender's well-known name; messages arrive with its unique name
# (":1.5"), so the local filter matches the rest only.
_ON_BUS = _prepare_for_sleep(LOGIND)
_LOCAL = _prepare_for_sleep(None)


@dataclass(frozen=True, slots=True)
class Tick:
    """One reading of both clocks."""

    wall: float  # POSIX seconds
    mono: float


def resumed(
    before: Tick, after: Tick, *, every_s: float = CHECK_EVERY_S, gap_s: float = GAP_S
) -> bool:
    """True when the two clocks disagree by more than `gap_s` (sleep, a wall-clock jump either
    way), or the check came more than `gap_s` late (a sleep the monotonic clock counted)."""
    wall = after.wall - before.wall
    mono = after.mono - before.mono
    return abs(wall - mono) > gap_s or mono - every_s > gap_s


class KernelTimer(Protocol):
    """What the watch needs of `services.linux.TimerFd`."""

    fd: int

    def arm(self, at: float) -> None: ...

    def outcome(self) -> linux.TimerOutcome: ...

    def close(self) -> None: ...


def kernel_timer() -> KernelTimer | None:
    """Linux's timerfd, cancelled on a resume or a clock set; None where there is none."""
    if not linux.available():
        return None
    try:
        return linux.TimerFd()
    except OSError as exc:
        log.info("no timerfd (%s)", exc)
        return None


class WakeWatch(QObject):
    """Calls `wake()` and says `resumed` after a resume from sleep: told by logind on `bus`
    (the system bus in the app; None: not asked), or else by the kernel (`kernel`: a timer
    cancelled on resume, or None), or else found by reading both clocks every `every_s` and
    asking `resumed`."""

    resumed = Signal()

    def __init__(
        self,
        *,
        clock: Clock,
        wake: Callable[[], None],
        every_s: float = CHECK_EVERY_S,
        bus: str | None = None,
        kernel: Callable[[], KernelTimer | None] = kernel_timer,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._wake = wake
        self._every_s = every_s
        self._bus = bus
        self._last = self._read()
        self._listener: asyncio.Task[None] | None = None
        self.wakes = 0
        self.listening = False  # subscribed to logind: no clock check runs
        self.gave_up_on_logind = False
        self.timer = QTimer(self)
        self.timer.setInterval(int(every_s * 1000))
        self.timer.timeout.connect(self.check)
        self._kernel_factory = kernel
        self._kernel: tuple[KernelTimer, QSocketNotifier] | None = None

    @property
    def kernel_watching(self) -> bool:
        """Whether the kernel's timer stands in for logind (no clock check runs)."""
        return self._kernel is not None

    def _read(self) -> Tick:
        return Tick(wall=self._clock.now().timestamp(), mono=self._clock.monotonic())

    def start(self) -> None:
        """Start the clock check; with a bus, also subscribe to logind (on the running loop),
        which stops the check once it succeeds."""
        self._fall_back()
        if self._bus is not None:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(self._bus), name="logind-sleep"
            )

    def stop(self) -> None:
        self._stop_fallback()
        if self._listener is not None:
            self._listener.cancel()

    async def aclose(self) -> None:
        """Stop, and hang up the bus."""
        self.stop()
        if self._listener is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def check(self) -> bool:
        now = self._read()
        gap = resumed(self._last, now, every_s=self._every_s)
        self._last = now
        if gap:
            self._woke("the clocks disagree (resume from sleep or a clock jump)")
        return gap

    def _woke(self, why: str) -> None:
        log.info("%s: waking the service", why)
        self.wakes += 1
        self._wake()
        self.resumed.emit()

    async def _listen(self, bus: str) -> None:
        try:
            conn = await open_dbus_connection(bus)
        except (OSError, KeyError, ValueError) as exc:  # KeyError/ValueError: no usable address
            self._give_up(f"no system bus ({exc})")
            return
        try:
            async with DBusRouter(conn) as router:
                reply = Proxy(message_bus, router).AddMatch(_ON_BUS)
                await asyncio.wait_for(reply, timeout=10)
                with router.filter(_LOCAL, bufsize=0) as queue:
                    self._stop_fallback()
                    self.listening = True
                    while True:
                        message = await queue.get()
                        if message.body == (False,):  # (True,): going to sleep
                            self._woke("logind says the machine resumed")
        except (OSError, TimeoutError, ConnectionError) as exc:
            self._give_up(f"logind's signal lost ({exc})")
        finally:
            self.listening = False
            await conn.close()

    def _give_up(self, why: str) -> None:
        log.info("%s: %s instead", why, self._fall_back())
        self.gave_up_on_logind = True

    def _fall_back(self) -> str:
        """Watch without logind: the kernel's timer if there is one, else the clock check;
        says which."""
        if self._kernel is None and (timer := self._kernel_factory()) is not None:
            try:
                timer.arm(time.time() + KERNEL_ARM_S)
            except OSError as exc:
                log.info("the kernel's timer cannot be armed (%s)", exc)
                timer.close()
            else:
                notifier = QSocketNotifier(timer.fd, QSocketNotifier.Type.Read, self)
                notifier.activated.connect(self._on_kernel_timer)
                self._kernel = (timer, notifier)
        if self._kernel is not None:
            return "the kernel's timer says when the machine resumes"
        self._last = self._read()
        self.timer.start()
        return f"checking the clocks every {self._every_s:.0f} s"

    def _stop_fallback(self) -> None:
        self.timer.stop()
        if self._kernel is not None:
            (timer, notifier), self._kernel = self._kernel, None
            notifier.setEnabled(False)
            notifier.deleteLater()
            timer.close()

    def _on_kernel_timer(self) -> None:
        assert self._kernel is not None
        timer = self._kernel[0]
        try:
            outcome = timer.outcome()
            if outcome is not linux.TimerOutcome.NOT_YET:
                timer.arm(time.time() + KERNEL_ARM_S)  # also what makes it cancellable again
        except OSError as exc:
            log.warning("the kernel's timer failed (%s): checking the clocks instead", exc)
            self._stop_fallback()
            self._kernel_factory = lambda: None
            self._fall_back()
            return
        if outcome is linux.TimerOutcome.CLOCK_CHANGED:
            self._woke("the machine resumed or the wall clock was set")
