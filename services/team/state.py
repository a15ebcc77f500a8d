"""The team connection's state, as the window shows it quietly (T5): an indicator, never a
dialog."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConnectionState"]


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"  # the server cannot be reached: work goes on, writes wait
    SIGNED_OUT = "signed_out"  # the server refused the token (revoked or expired)

    @property
    def label(self) -> str:
        """A short text for a person."""
        return _LABELS[self]


_LABELS = {
    ConnectionState.CONNECTING: "Connecting…",
    ConnectionState.ONLINE: "Connected",
    ConnectionState.OFFLINE: "Offline: changes are sent when the server is back",
    ConnectionState.SIGNED_OUT: "Signed out by the server: sign out, then sign in again",
}
