"""E8: a resume from sleep or a clock jump wakes the service's deadlines at once."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.wake import Tick, WakeWatch, resumed
from services.clock import ManualClock


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
    watch = WakeWatch(clock=clock, wake=lambda: woken.append(True))
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
