"""What a running process costs, read from Linux's /proc: CPU time and wake-ups.

A wake-up is a context switch of any of the process's threads: `voluntary_ctxt_switches`
(it slept and was woken: a timer, a socket, a futex) plus `nonvoluntary_ctxt_switches` (it was
preempted), summed over /proc/PID/task/*/status. An idle process sleeps in one place and
switches never. Used by the idle tests (tests/e2e) and bench/bench_idle.py, so both measure
the same thing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sample", "Usage", "measure", "sample", "wait_until_quiet"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a process: its CPU seconds, its threads' context switches, the time."""

    cpu_s: float
    per_thread: dict[int, int]  # thread id: its context switches so far
    at: float  # time.monotonic()

    @property
    def threads(self) -> int:
        return len(self.per_thread)

    def switches_since(self, before: Sample) -> int:
        """Switches since `before`: a thread started meanwhile counts whole; one that ended
        meanwhile is gone with its count (the sum of all threads could go down)."""
        return sum(n - before.per_thread.get(tid, 0) for tid, n in self.per_thread.items())


@dataclass(frozen=True, slots=True)
class Usage:
    """The difference between two samples: what the process did in between."""

    seconds: float
    cpu_s: float
    switches: int
    threads: int

    @property
    def cpu_percent(self) -> float:
        """Share of one core, in percent."""
        return 100.0 * self.cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def wakeups_per_s(self) -> float:
        return self.switches / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.cpu_percent:.3f} % CPU, {self.wakeups_per_s:.2f} wake-ups/s "
            f"({self.switches} switches of {self.threads} threads in {self.seconds:.1f} s)"
        )


def _switches(task: Path) -> int:
    total = 0
    try:
        text = (task / "status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0  # the thread ended between the listing and the read
    for line in text.splitlines():
        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
            total += int(line.split(":", 1)[1])
    return total


def sample(pid: int) -> Sample:
    """Read `pid` now. Raises ProcessLookupError when it is gone."""
    proc = Path("/proc", str(pid))
    try:
        stat = (proc / "stat").read_text()
        tasks = list((proc / "task").iterdir())
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    # Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
    fields = stat.rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS
    return Sample(
        cpu_s=cpu_s, per_thread={int(t.name): _switches(t) for t in tasks}, at=time.monotonic()
    )


def measure(pid: int, seconds: float) -> Usage:
    """What `pid` does over the next `seconds`."""
    before = sample(pid)
    time.sleep(seconds)
    after = sample(pid)
    return Usage(
        seconds=after.at - before.at,
        cpu_s=after.cpu_s - before.cpu_s,
        switches=after.switches_since(before),
        threads=after.threads,
    )


def wait_until_quiet(
    pid: int, *, window_s: float = 1.0, max_switches: int = 1, timeout_s: float = 60.0
) -> Usage | None:
    """Wait for start-up work to end: until one `window_s` window shows at most
    `max_switches` switches. Returns that window, or None if `timeout_s` passed first (the
    process never went quiet)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        usage = measure(pid, window_s)
        if usage.switches <= max_switches:
            return usage
    return None
