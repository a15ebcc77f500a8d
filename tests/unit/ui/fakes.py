"""Real fakes (subclass-style stand-ins, not mocks) shared by the UI tests."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ui.platform.notify import Notice

__all__ = ["RecordingNotifier", "RecordingPlayer"]


class RecordingPlayer:
    """A real SoundPlayer that remembers what it was asked to play (no sound server here)."""

    def __init__(self) -> None:
        self.played: list[Path] = []

    def play(self, path: Path) -> None:
        self.played.append(path)


class RecordingNotifier(QObject):
    """A real system notifier that records calls and can report a click."""

    opened = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[Notice] = []
        self.closed: list[str] = []

    def show(self, notice: Notice) -> None:
        self.shown.append(notice)

    def close(self, key: str) -> None:
        self.closed.append(key)
