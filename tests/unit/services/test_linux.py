"""The ctypes wrappers of timerfd and inotify (services/linux.py).

A test may not set the system clock (`clock_settime` needs CAP_SYS_TIME and would disturb the
shared machine), so TFD_TIMER_CANCEL_ON_SET is proven in two halves: the kernel accepts the
timer armed with exactly ABSTIME | CANCEL_ON_SET, and a read failing with ECANCELED (what the
kernel does when the clock is set) is understood as "the clock changed, recompute".
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time
from pathlib import Path

import pytest

from services import linux
from services.linux import TimerOutcome, timer_outcome

pytestmark = pytest.mark.skipif(not linux.available(), reason="timerfd and inotify are Linux's")
WAIT_S = 60.0


def _raises(exc: OSError) -> bytes:
    raise exc


def test_a_read_cancelled_by_a_clock_set_means_recompute() -> None:
    assert (
        timer_outcome(lambda: _raises(OSError(errno.ECANCELED, "x"))) is TimerOutcome.CLOCK_CHANGED
    )
    assert (
        timer_outcome(lambda: _raises(BlockingIOError(errno.EAGAIN, "x"))) is TimerOutcome.NOT_YET
    )
    assert timer_outcome(lambda: (1).to_bytes(8, sys.byteorder)) is TimerOutcome.EXPIRED
    with pytest.raises(OSError, match="bad"):
        timer_outcome(lambda: _raises(OSError(errno.EBADF, "bad")))


def test_the_kernel_accepts_an_absolute_timer_cancelled_on_clock_set() -> None:
    assert (linux.TFD_TIMER_ABSTIME, linux.TFD_TIMER_CANCEL_ON_SET) == (1, 2)
    timer = linux.TimerFd()
    try:
        assert timer.flags == linux.TFD_TIMER_ABSTIME | linux.TFD_TIMER_CANCEL_ON_SET
        timer.arm(time.time() + 3600)  # EINVAL here would mean the flags are wrong
        assert timer.outcome() is TimerOutcome.NOT_YET
        timer.arm(time.time() - 1)  # a deadline in the past fires at once
        ready, _, _ = select.select([timer.fd], [], [], WAIT_S)
        assert ready == [timer.fd]
        assert timer.outcome() is TimerOutcome.EXPIRED
    finally:
        timer.close()


def test_inotify_reports_the_names_written_in_a_folder(tmp_path: Path) -> None:
    fd = linux.inotify_watch(tmp_path, linux.IN_MODIFY | linux.IN_CREATE)
    try:
        assert linux.inotify_events(fd) == []
        (tmp_path / "deskbell.db-wal").write_bytes(b"x")
        ready, _, _ = select.select([fd], [], [], WAIT_S)
        assert ready == [fd]
        names = {name for _mask, name in linux.inotify_events(fd)}
        assert names == {"deskbell.db-wal"}
    finally:
        os.close(fd)
