"""Settings' Account tab in team mode (T4, T5): who is signed in, to which server (and the
certificate trusted for it, if pinned), the connection state as it changes, and "Sign out",
which the app carries out (it closes the replica first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QFormLayout, QLabel, QPushButton, QSizePolicy, QWidget

from services.api import ConnectionState, TeamAccount
from ui.widgets.mail_server_section import note_label

if TYPE_CHECKING:
    from services.api import TeamSync

__all__ = ["AccountSection"]


class AccountSection(QWidget):
    sign_out_requested = Signal()

    def __init__(
        self,
        *,
        account: TeamAccount,
        connection: TeamSync | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Account")
        self._connection = connection
        self._unsubscribe: Callable[[], None] | None = None
        self.account_label = note_label(
            f"{account.name} <{account.email}>", self, name="Signed in as"
        )
        self.server_label = note_label(account.server_url, self, name="Server")
        self.certificate_label = note_label(
            account.pin_sha256 or "", self, name="Trusted certificate (SHA-256)"
        )
        self.state_label = note_label("", self, name="Connection")
        self.sign_out_button = QPushButton("Sign &out", self)
        self.sign_out_button.setAccessibleName("Sign out")
        self.sign_out_button.setToolTip(
            "End this computer's session and forget the team's conversations here; "
            "they stay on the server"
        )
        self.sign_out_button.clicked.connect(self.sign_out_requested)
        self.sign_out_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        form = QFormLayout(self)
        form.addRow("Signed in as:", self.account_label)
        form.addRow("Server:", self.server_label)
        if account.pin_sha256:
            form.addRow("Trusted certificate:", self.certificate_label)
        form.addRow("Connection:", self.state_label)
        form.addRow(
            QLabel(
                "Signing out forgets the team's conversations on this computer; they stay "
                "on the server, and come back when you sign in again.",
                self,
                wordWrap=True,
            )
        )
        form.addRow("", self.sign_out_button)
        self._show_state(connection.state if connection is not None else None)

    def _show_state(self, state: ConnectionState | None) -> None:
        text = state.label if state is not None else "Not started"
        self.state_label.setText(text)
        self.state_label.setAccessibleDescription(text)

    def showEvent(self, event: QShowEvent) -> None:
        """Live while shown: each change of the connection is said at once."""
        if self._connection is not None and self._unsubscribe is None:
            self._show_state(self._connection.state)
            self._unsubscribe = self._connection.subscribe_state(self._show_state)
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().hideEvent(event)
