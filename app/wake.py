"""E8: notice a resume from sleep (or a clock jump) and wake the service at once.

While a machine sleeps, the monotonic clock stands still on Linux and macOS but the wall clock
runs on; on Windows both run, but a 10 s timer then fires far too late. Either gap means the
deadlines the service sleeps on may have passed unnoticed (Vorta's wake-gap check).

On Linux, logind says so itself: `PrepareForSleep(false)` on the system bus when the machine
resumes. Listening to it costs nothing while idle, so the clock check (a wake-up every 10 s)
runs only where logind cannot be reached. Clock jumps need no check there: the service's
`Clock.sleep_until` (timerfd) already wakes on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from jeepney import MatchRule, message_bus
from jeepney.io.asyncio import DBusRouter, Proxy, open_dbus_connection
from PySide6.QtCore import QObject, QTimer, Signal

from services.clock import Clock

__all__ = ["CHECK_EVERY_S", "GAP_S", "LOGIND", "Tick", "WakeWatch", "resumed"]

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0
GAP_S = 5.0
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


class WakeWatch(QObject):
    """Calls `wake()` and says `resumed` after a resume from sleep: told by logind on `bus`
    (the system bus in the app; None: not asked), or else found by reading both clocks every
    `every_s` and asking `resumed`."""

    resumed = Signal()

    def __init__(
        self,
        *,
        clock: Clock,
        wake: Callable[[], None],
        every_s: float = CHECK_EVERY_S,
        bus: str | None = None,
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

    def _read(self) -> Tick:
        return Tick(wall=self._clock.now().timestamp(), mono=self._clock.monotonic())

    def start(self) -> None:
        """Start the clock check; with a bus, also subscribe to logind (on the running loop),
        which stops the check once it succeeds."""
        self._last = self._read()
        self.timer.start()
        if self._bus is not None:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(self._bus), name="logind-sleep"
            )

    def stop(self) -> None:
        self.timer.stop()
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
                    self.timer.stop()
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
        log.info("%s: checking the clocks every %.0f s instead", why, self._every_s)
        self.gave_up_on_logind = True
        self._last = self._read()
        self.timer.start()
