"""D4, N5, R5: the ping file, the player chain and the at-most-every-2-s policy."""

from __future__ import annotations

import os
import sys
import time
import wave
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from services.clock import ManualClock
from tests.unit.ui.fakes import RecordingPlayer
from ui.platform import PlatformUnavailable
from ui.platform.sound import (
    BeepPlayer,
    LinuxCommandPlayer,
    Pinger,
    WinsoundPlayer,
    make_sound_player,
    ping_path,
)


class BrokenPlayer(RecordingPlayer):
    def __init__(self) -> None:
        raise PlatformUnavailable("not on this machine")


class SecondPlayer(RecordingPlayer):
    pass


def test_d4_ping_file_is_short_mono_16_bit() -> None:
    with wave.open(str(ping_path()), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == 44_100
        duration = wav.getnframes() / wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    assert 0.15 <= duration <= 0.25
    last = int.from_bytes(frames[-2:], "little", signed=True)
    assert abs(last) < 200  # faded out: no click at the end


def test_d4_chain_falls_back_past_unavailable_players() -> None:
    player = make_sound_player(candidates=(BrokenPlayer, SecondPlayer, RecordingPlayer))
    assert type(player) is SecondPlayer


def test_d4_chain_raises_when_nothing_works() -> None:
    with pytest.raises(PlatformUnavailable, match="no sound player"):
        make_sound_player(candidates=(BrokenPlayer,))


@pytest.mark.skipif(sys.platform == "win32", reason="winsound exists there")
def test_d4_winsound_unavailable_off_windows() -> None:
    with pytest.raises(PlatformUnavailable):
        WinsoundPlayer()


def test_d4_beep_player_needs_qapplication(qapp: QApplication) -> None:
    BeepPlayer().play(ping_path())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux players")
def test_d4_linux_player_runs_the_first_command_without_blocking(tmp_path: Path) -> None:
    out = tmp_path / "played.txt"
    gate = tmp_path / "gate"
    for name in ("paplay", "aplay"):
        script = tmp_path / name
        # The "sound" lasts until the test opens the gate: play() must return before that.
        wait = f'while [ ! -e "{gate}" ]; do sleep 0.02; done'
        script.write_text(f'#!/bin/sh\n{wait}\necho "{name} $1" >> "{out}"\n')
        script.chmod(0o755)
    player = LinuxCommandPlayer(search_path=str(tmp_path))
    assert player.command.endswith("paplay")
    player.play(ping_path())
    assert not out.exists()  # returned while the sound still plays
    gate.touch()
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.read_text().strip() == f"paplay {ping_path()}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux players")
def test_d4_linux_player_unavailable_without_commands(tmp_path: Path) -> None:
    with pytest.raises(PlatformUnavailable, match="pw-play"):
        LinuxCommandPlayer(search_path=str(tmp_path) + os.pathsep)


def test_n5_at_most_one_ping_every_two_seconds() -> None:
    clock = ManualClock()
    player = RecordingPlayer()
    pinger = Pinger(player=player, clock=clock)
    assert pinger.ping(sound_on=True) is True
    clock.advance(0.5)
    assert pinger.ping(sound_on=True) is False
    clock.advance(1.49)
    assert pinger.ping(sound_on=True) is False
    clock.advance(0.01)
    assert pinger.ping(sound_on=True) is True
    assert player.played == [ping_path(), ping_path()]


def test_r5_silent_when_sound_is_off() -> None:
    clock = ManualClock()
    player = RecordingPlayer()
    pinger = Pinger(player=player, clock=clock)
    assert pinger.ping(sound_on=False) is False
    assert player.played == []
    # A silenced ping does not hold back the next audible one.
    assert pinger.ping(sound_on=True) is True
    assert pinger.last_played == clock.monotonic()
