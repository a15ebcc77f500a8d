"""A stand-in for the team sync's connection state (services.api.TeamSync's `state` and
`subscribe_state`) for window tests that need no server; tests/unit/ui/windows/
test_team_desktop.py drives the window with the real TeamSync and a real server."""

from __future__ import annotations

from collections.abc import Callable

from services.api import ConnectionState

__all__ = ["FakeSync"]


class FakeSync:
    def __init__(self, state: ConnectionState = ConnectionState.CONNECTING) -> None:
        self.state = state
        self.listeners: list[Callable[[ConnectionState], None]] = []

    def subscribe_state(self, callback: Callable[[ConnectionState], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def set(self, state: ConnectionState) -> None:
        self.state = state
        for listener in list(self.listeners):
            listener(state)
