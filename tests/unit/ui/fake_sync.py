"""A stand-in for the team sync's connection state (services.api.TeamSync's `state` and
`subscribe_state`), for window tests that need no server."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = ["FakeSync", "State"]


class State(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    SIGNED_OUT = "signed_out"


class FakeSync:
    def __init__(self, state: State = State.CONNECTING) -> None:
        self.state = state
        self.listeners: list[Callable[[State], None]] = []

    def subscribe_state(self, callback: Callable[[State], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def set(self, state: State) -> None:
        self.state = state
        for listener in list(self.listeners):
            listener(state)
