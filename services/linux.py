"""The two Linux kernel facilities that let the service sleep without timers (ctypes, no deps).

- inotify: a file descriptor that becomes readable when a watched file changes (the SQLite
  watcher: another process wrote the -wal file).
- timerfd: a file descriptor that becomes readable at an absolute wall-clock time, counted
  across suspend, and at once (ECANCELED) when the wall clock is set (the clock's sleep).

Both are driven by `loop.add_reader`, so an idle process has no timer at all. `available()`
is False off Linux or where libc lacks them; callers then use their documented fallback.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import functools
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "IN_CREATE",
    "IN_MODIFY",
    "IN_MOVED_TO",
    "TFD_TIMER_ABSTIME",
    "TFD_TIMER_CANCEL_ON_SET",
    "TimerFd",
    "TimerOutcome",
    "available",
    "inotify_events",
    "inotify_watch",
    "timer_outcome",
]

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name

# <sys/timerfd.h>
CLOCK_REALTIME = 0
TFD_TIMER_ABSTIME = 1 << 0
TFD_TIMER_CANCEL_ON_SET = 1 << 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in ("inotify_init1", "inotify_add_watch", "timerfd_create", "timerfd_settime"):
            getattr(libc, name)
    except (OSError, AttributeError):
        return None
    libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    libc.timerfd_settime.argtypes = (
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_Itimerspec),
        ctypes.POINTER(_Itimerspec),
    )
    return libc


def available() -> bool:
    """inotify and timerfd can be used here (Linux with a glibc or musl that has them)."""
    return _libc() is not None


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _lib() -> ctypes.CDLL:
    libc = _libc()
    if libc is None:
        raise OSError(errno.ENOSYS, "inotify/timerfd need Linux")
    return libc


def inotify_watch(folder: Path, mask: int) -> int:
    """A non-blocking inotify descriptor watching `folder` (its entries' changes) for `mask`.
    The caller closes it with os.close."""
    libc = _lib()
    fd = _check(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC), "inotify_init1")
    try:
        _check(libc.inotify_add_watch(fd, os.fsencode(folder), mask), "inotify_add_watch")
    except OSError:
        os.close(fd)
        raise
    return fd


def inotify_events(fd: int) -> list[tuple[int, str]]:
    """Drain every pending event as (mask, name); [] when none is pending."""
    events: list[tuple[int, str]] = []
    while True:
        try:
            buf = os.read(fd, 65536)
        except BlockingIOError:
            return events
        offset = 0
        while offset + _EVENT.size <= len(buf):
            _wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
            offset += _EVENT.size
            name = buf[offset : offset + length].rstrip(b"\0")
            offset += length
            events.append((mask, os.fsdecode(name)))


class TimerOutcome(enum.Enum):
    EXPIRED = "the deadline passed"
    CLOCK_CHANGED = "the wall clock was set (ECANCELED): recompute the deadline"
    NOT_YET = "nothing to read yet (a spurious wake-up)"


def timer_outcome(read: Callable[[], bytes]) -> TimerOutcome:
    """What one read of a timerfd means. `read` is `lambda: os.read(fd, 8)`.

    With TFD_TIMER_CANCEL_ON_SET a set of CLOCK_REALTIME (NTP step, the user, a resume that
    corrects the clock) makes the read fail with ECANCELED instead of waiting on.
    """
    try:
        data = read()
    except BlockingIOError:
        return TimerOutcome.NOT_YET
    except OSError as exc:
        if exc.errno == errno.ECANCELED:
            return TimerOutcome.CLOCK_CHANGED
        raise
    return TimerOutcome.EXPIRED if data else TimerOutcome.NOT_YET


class TimerFd:
    """A non-blocking CLOCK_REALTIME timerfd; `arm(at)` sets an absolute POSIX time."""

    def __init__(self) -> None:
        self.fd = _check(
            _lib().timerfd_create(CLOCK_REALTIME, _TFD_NONBLOCK | _TFD_CLOEXEC), "timerfd_create"
        )
        self.flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET

    def arm(self, at: float) -> None:
        """Fire at POSIX time `at` (now or in the past: at once); wake early on a clock set."""
        seconds = int(at)
        nanos = max(0, min(999_999_999, round((at - seconds) * 1e9)))
        if seconds <= 0 and nanos == 0:
            nanos = 1  # an all-zero it_value would disarm the timer instead
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(seconds, nanos))
        _check(
            _lib().timerfd_settime(self.fd, self.flags, ctypes.byref(spec), None), "timerfd_settime"
        )

    def outcome(self) -> TimerOutcome:
        return timer_outcome(lambda: os.read(self.fd, 8))

    def close(self) -> None:
        os.close(self.fd)
