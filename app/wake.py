"""E8: notice a resume from sleep (or a clock jump) and wake the service at once.

While a machine sleeps, the monotonic clock stands still on Linux and macOS but the wall clock
runs on; on Windows both run, but a 10 s timer then fires far too late. Either gap means the
deadlines the service sleeps on may have passed unnoticed (Vorta's wake-gap check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer

from services.clock import Clock

__all__ = ["CHECK_EVERY_S", "GAP_S", "Tick", "WakeWatch", "resumed"]

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0
GAP_S = 5.0


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
    """Reads both clocks every `every_s` and calls `wake()` when `resumed` says so."""

    def __init__(
        self,
        *,
        clock: Clock,
        wake: Callable[[], None],
        every_s: float = CHECK_EVERY_S,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._wake = wake
        self._every_s = every_s
        self._last = self._read()
        self.wakes = 0
        self.timer = QTimer(self)
        self.timer.setInterval(int(every_s * 1000))
        self.timer.timeout.connect(self.check)

    def _read(self) -> Tick:
        return Tick(wall=self._clock.now().timestamp(), mono=self._clock.monotonic())

    def start(self) -> None:
        self._last = self._read()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def check(self) -> bool:
        now = self._read()
        gap = resumed(self._last, now, every_s=self._every_s)
        self._last = now
        if gap:
            log.info("the clocks disagree (resume from sleep or a clock jump): waking the service")
            self.wakes += 1
            self._wake()
        return gap
