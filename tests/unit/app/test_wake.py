"""E8: a resume from sleep or a clock jump wakes the service's deadlines at once."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jeepney import DBusAddress, message_bus, new_signal
from jeepney.io import blocking
from pytestqt.qtbot import QtBot

from app.wake import KERNEL_ARM_S, LOGIND, Tick, WakeWatch, resumed
from services import linux
from services.clock import ManualClock

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's timerfd")


def test_e8_resumed_policy() -> None:
    start = Tick(wall=1000.0, mono=50.0)
    assert not resumed(start, Tick(wall=1010.0, mono=60.0))  # an ordinary tick
    assert not resumed(start, Tick(wall=1014.0, mono=60.0))  # small drift
    assert resumed(start, Tick(wall=1610.0, mono=60.0))  # slept 10 min, monotonic stood still
    assert resumed(start, Tick(wall=990.0, mono=60.0))  # wall clock set back
    assert resumed(start, Tick(wall=1620.0, mono=620.0))  # both counted the sleep (Windows)
    assert not resumed(start, Tick(wall=1014.0, mono=64.0))  # a little late is fine


def test_e8_wake_watch_wakes_on_sleep_and_jump_not_on_ordinary_ticks(qtbot: QtBot) -> None:
    clock = ManualClock()
    woken: list[bool] = []
    # No logind and no kernel timer (macOS, Windows): the clocks are read every 10 s.
    watch = WakeWatch(clock=clock, wake=lambda: woken.append(True), kernel=lambda: None)
    watch.start()
    assert watch.timer.isActive() and watch.timer.interval() == 10_000
    clock.advance(10)
    assert not watch.check() and woken == []
    clock.jump(3600)  # asleep for an hour: only the wall clock moved
    clock.advance(10)
    assert watch.check() and woken == [True]
    clock.advance(10)
    assert not watch.check()  # compared with the last reading, not the first
    clock.jump(-120)
    assert watch.check() and watch.wakes == 2
    watch.stop()
    assert not watch.timer.isActive()


@pytest.fixture
def private_bus() -> Iterator[str]:
    """A real dbus-daemon of our own (logind itself cannot run here): its address."""
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        if daemon.stdout is not None:
            daemon.stdout.close()


def _fake_logind(address: str) -> blocking.DBusConnection:
    """A connection that owns logind's name on the private bus, to send its signal."""
    conn = blocking.open_dbus_connection(bus=address)
    reply = blocking.Proxy(message_bus, conn, timeout=10).RequestName(LOGIND, 0)
    assert reply == (1,), reply  # primary owner
    return conn


def _prepare_for_sleep(conn: blocking.DBusConnection, starting: bool) -> None:
    conn.send(
        new_signal(
            DBusAddress("/org/freedesktop/login1", interface=f"{LOGIND}.Manager"),
            "PrepareForSleep",
            "b",
            (starting,),
        )
    )


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_issue9_e8_logind_resume_wakes_the_service_and_no_clock_timer_runs(
    qtbot: QtBot, private_bus: str
) -> None:
    """Issue 9 (idle means idle), E8: with logind on the system bus, the watch runs no timer
    while idle; logind's PrepareForSleep(false) (the machine resumed) wakes the service and
    says `resumed` (the window re-arms its own timers); going to sleep wakes nobody."""
    woken: list[bool] = []
    watch = WakeWatch(clock=ManualClock(), wake=lambda: woken.append(True), bus=private_bus)
    resumed_signals: list[bool] = []
    watch.resumed.connect(lambda: resumed_signals.append(True))
    logind = _fake_logind(private_bus)
    try:
        watch.start()
        await _until(lambda: watch.listening, "the watch to subscribe to logind")
        assert not watch.timer.isActive()
        _prepare_for_sleep(logind, True)  # going to sleep: nothing to do
        _prepare_for_sleep(logind, False)  # resumed
        await _until(lambda: bool(woken), "the wake after resume")
        assert woken == [True] and resumed_signals == [True] and watch.wakes == 1
    finally:
        logind.close()
        await watch.aclose()
    assert not watch.timer.isActive() and not watch.listening


async def test_issue9_e8_without_logind_the_watch_falls_back_to_reading_the_clocks(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """E8: no system bus (macOS, Windows): the 10 s clock check stays on."""
    watch = WakeWatch(
        clock=ManualClock(),
        wake=lambda: None,
        bus=f"unix:path={tmp_path}/none",
        kernel=lambda: None,
    )
    watch.start()
    await _until(lambda: watch.gave_up_on_logind, "the watch to find no bus")
    assert watch.timer.isActive() and not watch.listening
    await watch.aclose()
    assert not watch.timer.isActive()


@linux_only
async def test_issue9_e8_linux_without_logind_the_kernel_timer_replaces_the_clock_check(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Issue 9 (idle means idle), E8: no system bus on Linux (a container, a desktop without
    logind): the kernel's timer, armed far ahead, stands in; no 10 s clock check runs."""
    watch = WakeWatch(clock=ManualClock(), wake=lambda: None, bus=f"unix:path={tmp_path}/none")
    watch.start()
    await _until(lambda: watch.gave_up_on_logind, "the watch to find no bus")
    assert watch.kernel_watching and not watch.timer.isActive() and not watch.listening
    await watch.aclose()
    assert not watch.kernel_watching and not watch.timer.isActive()


class FakeKernelTimer:
    """A resume cannot be made here: a pipe stands in for the timerfd, and `cancel()` makes
    it readable with the outcome the kernel gives after a resume (ECANCELED)."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()
        os.set_blocking(self.fd, False)
        self.armed_at: list[float] = []

    def arm(self, at: float) -> None:
        self.armed_at.append(at)

    def cancel(self) -> None:
        os.write(self._write, b"x")

    def outcome(self) -> linux.TimerOutcome:
        def read() -> bytes:
            os.read(self.fd, 8)
            raise OSError(errno.ECANCELED, "cancelled")

        return linux.timer_outcome(read)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._write)


def test_issue9_e8_the_kernel_timer_cancelled_by_a_resume_wakes_the_service(
    qtbot: QtBot,
) -> None:
    """E8: the kernel cancels the timer on resume: the service wakes, `resumed` is said (the
    window re-arms its own timers), and the timer is armed again for the next one."""
    woken: list[bool] = []
    fake = FakeKernelTimer()
    watch = WakeWatch(clock=ManualClock(), wake=lambda: woken.append(True), kernel=lambda: fake)
    resumed_signals: list[bool] = []
    watch.resumed.connect(lambda: resumed_signals.append(True))
    watch.start()
    try:
        assert watch.kernel_watching and not watch.timer.isActive()
        assert len(fake.armed_at) == 1 and fake.armed_at[0] > KERNEL_ARM_S
        fake.cancel()
        qtbot.waitUntil(lambda: bool(woken), timeout=60_000)
        assert woken == [True] and resumed_signals == [True] and len(fake.armed_at) == 2
        fake.cancel()
        qtbot.waitUntil(lambda: len(woken) == 2, timeout=60_000)
    finally:
        watch.stop()
    assert not watch.kernel_watching
