"""What the window needs of a desktop's team sync (T5): its connection state, and a way to be
told when it changes. `services.api.TeamSync` is one; tests use a small object of the same
shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["ConnectionSource", "NamedState"]


class NamedState(Protocol):
    """A connection state (`services.api.ConnectionState`, an enum): ONLINE, OFFLINE,
    CONNECTING, SIGNED_OUT."""

    @property
    def name(self) -> str: ...


class ConnectionSource(Protocol):
    @property
    def state(self) -> NamedState: ...

    def subscribe_state(self, callback: Callable[[NamedState], None]) -> Callable[[], None]:
        """Call `callback` with each new state; returns the call that unsubscribes."""
        ...
