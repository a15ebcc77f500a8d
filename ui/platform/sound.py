"""The ping (D4, N5): a sound file played without blocking the window, at most once every 2 s.

QtMultimedia is not used: it is not in PySide6-Essentials and needs libpulse even to import.
Each platform has its own non-blocking player; `make_sound_player` takes the first that works.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Protocol

from PySide6.QtWidgets import QApplication

from services.api import Clock
from ui.platform import PlatformUnavailable

__all__ = [
    "DEFAULT_PLAYERS",
    "MIN_PING_INTERVAL_S",
    "AfplayPlayer",
    "BeepPlayer",
    "LinuxCommandPlayer",
    "Pinger",
    "SoundPlayer",
    "WinsoundPlayer",
    "make_sound_player",
    "ping_path",
]

log = logging.getLogger(__name__)

MIN_PING_INTERVAL_S = 2.0


class SoundPlayer(Protocol):
    def play(self, path: Path) -> None:
        """Start playing `path` and return at once (never block the GUI thread)."""
        ...


def ping_path() -> Path:
    """The committed ping.wav; a real file in an installed wheel or a source tree."""
    return Path(str(files("resources").joinpath("sounds", "ping.wav")))


class WinsoundPlayer:
    """Windows: the stdlib's winsound, asynchronous."""

    def __init__(self) -> None:
        self._winsound: ModuleType
        if sys.platform != "win32":
            raise PlatformUnavailable("winsound exists only on Windows")
        try:
            self._winsound = importlib.import_module("winsound")
        except ImportError as exc:
            raise PlatformUnavailable(f"winsound cannot be imported: {exc}") from exc

    def play(self, path: Path) -> None:
        flags = (
            self._winsound.SND_FILENAME | self._winsound.SND_ASYNC | self._winsound.SND_NODEFAULT
        )
        self._winsound.PlaySound(str(path), flags)


class _CommandPlayer:
    """Runs `<command> <file>` in the background and reaps it from a daemon thread."""

    def __init__(self, command: str) -> None:
        self.command = command

    def play(self, path: Path) -> None:
        try:
            process = subprocess.Popen(
                [self.command, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:
            log.warning("cannot run %s: %s", self.command, exc)
            return
        # wait() in a thread reaps the child (no zombie) without blocking the caller.
        threading.Thread(target=process.wait, name="deskbell-sound-reaper", daemon=True).start()


class AfplayPlayer(_CommandPlayer):
    """macOS: /usr/bin/afplay."""

    def __init__(self, *, search_path: str | None = None) -> None:
        if sys.platform != "darwin":
            raise PlatformUnavailable("afplay exists only on macOS")
        found = shutil.which("afplay", path=search_path)
        if found is None:
            raise PlatformUnavailable("afplay not found")
        super().__init__(found)


class LinuxCommandPlayer(_CommandPlayer):
    """Linux and other Unixes: the first of pw-play (PipeWire), paplay (Pulse), aplay (ALSA)."""

    COMMANDS = ("pw-play", "paplay", "aplay")

    def __init__(self, *, search_path: str | None = None) -> None:
        if sys.platform in ("win32", "darwin"):
            raise PlatformUnavailable("not a Linux desktop")
        for name in self.COMMANDS:
            found = shutil.which(name, path=search_path)
            if found is not None:
                super().__init__(found)
                return
        raise PlatformUnavailable(f"none of {', '.join(self.COMMANDS)} is on PATH")


class BeepPlayer:
    """Last resort: the desktop's own beep (ignores the file)."""

    def __init__(self) -> None:
        if not isinstance(QApplication.instance(), QApplication):
            raise PlatformUnavailable("QApplication.beep() needs a QApplication")

    def play(self, path: Path) -> None:
        QApplication.beep()


DEFAULT_PLAYERS: tuple[Callable[[], SoundPlayer], ...] = (
    WinsoundPlayer,
    AfplayPlayer,
    LinuxCommandPlayer,
    BeepPlayer,
)


def make_sound_player(
    *, candidates: Sequence[Callable[[], SoundPlayer]] = DEFAULT_PLAYERS
) -> SoundPlayer:
    """The first candidate whose constructor does not raise PlatformUnavailable."""
    reasons = []
    for factory in candidates:
        try:
            player = factory()
        except PlatformUnavailable as exc:
            reasons.append(f"{getattr(factory, '__name__', factory)!s}: {exc}")
            continue
        log.info("sound player: %s", type(player).__name__)
        return player
    raise PlatformUnavailable("no sound player works here (" + "; ".join(reasons) + ")")


class Pinger:
    """The ping policy (N1, N5, R5): silent when sound is off, at most one ping every 2 s."""

    def __init__(
        self,
        *,
        player: SoundPlayer,
        clock: Clock,
        sound: Path | None = None,
        min_interval_s: float = MIN_PING_INTERVAL_S,
    ) -> None:
        self._player = player
        self._clock = clock
        self._sound = sound if sound is not None else ping_path()
        self._min_interval_s = min_interval_s
        self._last_played: float | None = None

    @property
    def last_played(self) -> float | None:
        """Monotonic time of the last ping that played, if any."""
        return self._last_played

    def ping(self, *, sound_on: bool) -> bool:
        """Play the ping unless sound is off or one played less than 2 s ago; True if it played."""
        if not sound_on:
            return False
        now = self._clock.monotonic()
        if self._last_played is not None and now - self._last_played < self._min_interval_s:
            return False
        try:
            self._player.play(self._sound)
        except OSError as exc:
            log.warning("ping failed: %s", exc)
            return False
        self._last_played = now
        return True
