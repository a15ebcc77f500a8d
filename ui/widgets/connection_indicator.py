"""The quiet connection indicator of a desktop in a team (T5): one muted line at the top of the
sidebar saying "Offline", "Connecting…" or "Signed out", and nothing at all while online. Never
a dialog: working offline is normal, and the window keeps working from its replica."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from services.api import ConnectionState
from ui.theme import Theme

__all__ = ["ConnectionIndicator"]

# What each state says; a state not listed (online) shows nothing.
_TEXTS = {
    ConnectionState.OFFLINE: "Offline: changes wait until the server is back",
    ConnectionState.CONNECTING: "Connecting to the server…",
    ConnectionState.SIGNED_OUT: "Your session ended: sign out in Settings, then sign in again",
}


class ConnectionIndicator(QLabel):
    """`set_state(state)`: the team sync's connection state."""

    def __init__(self, *, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionIndicator")
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        # Muted text on the hovered-row background: a pair the theme keeps readable (D6).
        self.setStyleSheet(
            f"#connectionIndicator {{ color: {theme.muted.name()};"
            f" background: {theme.alt_base.name()};"
            f" border-left: 3px solid {theme.muted.name()}; padding: 4px 10px;"
            " margin: 0 10px 6px 10px; }"
        )
        self.state = ConnectionState.ONLINE
        self.hide()

    def set_state(self, state: ConnectionState) -> None:
        self.state = state
        text = _TEXTS.get(state)
        self.setText(text or "")
        self.setAccessibleName(f"Connection: {text}" if text else "Connection: online")
        self.setToolTip(text or "")
        self.setVisible(text is not None)
