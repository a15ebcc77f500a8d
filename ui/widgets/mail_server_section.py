"""One mail server's settings (E9, I1): server, port, security, login, and a test button.

Settings shows it twice, for outgoing (SMTP) and incoming (IMAP) mail; each adds its own rows
(`add_row`) and its own test input (`test_row`). It holds no service: the dialog fills it,
reads it back, and runs the test when `test_requested` fires.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

__all__ = ["MailServer", "MailServerKind", "MailServerSection", "note_label"]

_PLAIN_WARNING = (
    "⚠ Without TLS, your password and every email cross the network in plain text. "
    "Choose this only for a mail {what} on this computer or a trusted local network."
)
KEPT_IN_KEYRING = "leave empty to keep the saved password"
SAVED_IN_KEYRING = "saved in the keyring; type to replace it"


@dataclass(frozen=True, slots=True)
class MailServerKind:
    """What differs between the outgoing and the incoming server."""

    protocol: str  # "SMTP", "IMAP": prefixes the accessible names
    security: tuple[tuple[str, str, int], ...]  # (label, value, usual port)
    host_placeholder: str
    username_placeholder: str
    plain_what: str  # "relay", "server"
    admin_note: str
    test_text: str  # the test button's text (with its mnemonic)
    test_name: str  # the test button's accessible name
    test_caption: str  # the words before the test input


@dataclass(frozen=True, slots=True)
class MailServer:
    host: str
    port: int
    security: str
    username: str


def note_label(text: str, parent: QWidget, *, name: str) -> QLabel:
    """A wrapped, selectable line of explanation or result."""
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setAccessibleName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class MailServerSection(QWidget):
    test_requested = Signal()

    def __init__(
        self, *, kind: MailServerKind, editable: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.kind = kind
        p = kind.protocol
        self.host_edit = QLineEdit(self)
        self.host_edit.setPlaceholderText(kind.host_placeholder)
        self.host_edit.setAccessibleName(f"{p} server")
        self.port_spin = QSpinBox(self)
        self.port_spin.setRange(1, 65535)
        self.port_spin.setAccessibleName(f"{p} port")
        self.security_combo = QComboBox(self)
        self.security_combo.setAccessibleName(f"{p} connection security")
        for text, value, _ in kind.security:
            self.security_combo.addItem(text, value)
        self.plain_warning = note_label(
            _PLAIN_WARNING.format(what=kind.plain_what), self, name=f"{p} plain text warning"
        )
        self.plain_warning.setStyleSheet("color: palette(link); font-weight: bold;")
        self.username_edit = QLineEdit(self)
        self.username_edit.setPlaceholderText(kind.username_placeholder)
        self.username_edit.setAccessibleName(f"{p} user name")
        self.password_edit = QLineEdit(self)
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText(KEPT_IN_KEYRING)
        self.password_edit.setAccessibleName(f"{p} password")
        password_note = note_label(
            "Kept in your system's keyring, never in a file.", self, name=f"{p} password storage"
        )
        self.admin_note = note_label(kind.admin_note, self, name=f"{p} administrator note")
        self.admin_note.setVisible(not editable)

        self.form = QFormLayout()
        self.form.addRow("&Server:", self.host_edit)
        self.form.addRow("&Port:", self.port_spin)
        self.form.addRow("Se&curity:", self.security_combo)
        self.form.addRow("", self.plain_warning)
        self.form.addRow("&User name:", self.username_edit)
        self.form.addRow("Pass&word:", self.password_edit)
        self.form.addRow("", password_note)

        self.test_button = QPushButton(kind.test_text, self)
        self.test_button.setAccessibleName(kind.test_name)
        self.test_button.clicked.connect(self.test_requested)
        self.test_result = note_label("", self, name=f"{p} test result")
        self.test_result.hide()
        test_box = QGroupBox("Check the settings", self)
        self.test_row = QHBoxLayout()
        test_layout = QVBoxLayout(test_box)
        test_layout.addWidget(QLabel(kind.test_caption, test_box))
        test_layout.addLayout(self.test_row)
        test_layout.addWidget(self.test_result)

        layout = QVBoxLayout(self)
        layout.addWidget(self.admin_note)
        layout.addLayout(self.form)
        layout.addWidget(test_box)
        layout.addStretch(1)
        self.security_combo.currentIndexChanged.connect(self._on_security_combo_changed)
        self._editable = editable
        self._inputs: list[QWidget] = [
            self.host_edit,
            self.port_spin,
            self.security_combo,
            self.username_edit,
            self.password_edit,
        ]
        for widget in self._inputs:
            widget.setEnabled(editable)

    def add_row(self, label: str, widget: QWidget, *, editable_only: bool = True) -> None:
        """One more row under the login rows; disabled with the rest for a non-administrator."""
        self.form.addRow(label, widget)
        if editable_only:
            self._inputs.append(widget)
            widget.setEnabled(self._editable)

    def fill(self, server: MailServer) -> None:
        self.host_edit.setText(server.host)
        self.port_spin.setValue(server.port)
        self.security_combo.blockSignals(True)
        self.security_combo.setCurrentIndex(max(0, self.security_combo.findData(server.security)))
        self.security_combo.blockSignals(False)
        self.plain_warning.setVisible(server.security == "none")
        self.username_edit.setText(server.username)

    def server(self) -> MailServer:
        return MailServer(
            host=self.host_edit.text().strip(),
            port=self.port_spin.value(),
            security=str(self.security_combo.currentData()),
            username=self.username_edit.text().strip(),
        )

    def new_password(self) -> str:
        """What was typed; empty keeps the saved one."""
        return self.password_edit.text()

    def password_saved(self) -> None:
        self.password_edit.clear()
        self.password_edit.setPlaceholderText(SAVED_IN_KEYRING)

    def show_test(self, text: str | None, *, ok: bool) -> None:
        self.test_result.setText(text or "")
        self.test_result.setAccessibleDescription(text or "")
        self.test_result.setVisible(bool(text))
        self.test_result.setStyleSheet("" if ok else "color: palette(link); font-weight: bold;")

    def _on_security_combo_changed(self, index: int) -> None:
        value = self.security_combo.itemData(index)
        self.plain_warning.setVisible(value == "none")
        # Follow the port if it was the previous mode's usual one.
        usual = {port for _, _, port in self.kind.security}
        if self.port_spin.value() in usual:
            self.port_spin.setValue(next(p for _, v, p in self.kind.security if v == value))
