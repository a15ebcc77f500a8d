"""The first-run dialog: who are you? (name and email of the first user of a workspace)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.api import InputError, validate_address, validate_name
from ui.icons import app_icon, app_icon_pixmap

__all__ = ["FirstRunDialog", "check_name"]

MAX_NAME_CHARS = 100


def check_name(name: str) -> str:
    """The name as it will be stored; InputError with a sentence a person can act on."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InputError("Please enter your name.")
    try:
        validate_name(name)
    except InputError:
        raise InputError("Your name must be one line, without control characters.") from None
    if len(cleaned) > MAX_NAME_CHARS:
        raise InputError(f"Please keep your name under {MAX_NAME_CHARS} characters.")
    return cleaned


class FirstRunDialog(QDialog):
    """Asks the first user's name and email; Start stays disabled until both are valid."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Deskbell")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("Welcome to Deskbell")
        self.setMinimumWidth(440)
        self._result: tuple[str, str] | None = None

        logo = QLabel(self)
        logo.setPixmap(app_icon_pixmap(size=48, dpr=self.devicePixelRatioF()))
        logo.setAccessibleName("Deskbell logo")
        title = QLabel("Welcome to Deskbell", self)
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        title.setAccessibleName("Welcome to Deskbell")
        intro = QLabel(
            "Tell your teammates and customers who you are. Your email address is where "
            "Deskbell sends what you have not seen within a minute.",
            self,
        )
        intro.setWordWrap(True)
        header = QHBoxLayout()
        header.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        texts = QVBoxLayout()
        texts.addWidget(title)
        texts.addWidget(intro)
        header.addLayout(texts, 1)

        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("Alex Morgan")
        self.name_edit.setAccessibleName("Your name")
        self.name_edit.setMaxLength(MAX_NAME_CHARS + 20)
        self.email_edit = QLineEdit(self)
        self.email_edit.setPlaceholderText("alex@example.com")
        self.email_edit.setAccessibleName("Your email address")
        self.email_edit.setInputMethodHints(Qt.InputMethodHint.ImhEmailCharactersOnly)
        form = QFormLayout()
        form.addRow("&Name:", self.name_edit)
        form.addRow("&Email:", self.email_edit)

        self.error_label = QLabel("", self)
        self.error_label.setObjectName("firstRunError")
        self.error_label.setAccessibleName("Problem")
        self.error_label.setWordWrap(True)
        # The palette's link colour is readable on light and dark themes alike (D6).
        self.error_label.setStyleSheet("color: palette(link); font-weight: bold;")
        self.error_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.start_button = QPushButton("&Start", self)
        self.start_button.setAccessibleName("Start using Deskbell")
        self.start_button.setDefault(True)
        self.buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addLayout(header)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.name_edit.textChanged.connect(self._on_input_changed)
        self.email_edit.textChanged.connect(self._on_input_changed)
        self.email_edit.editingFinished.connect(self._on_email_editing_finished)
        self._on_input_changed()

    def _problem(self) -> str | None:
        try:
            check_name(self.name_edit.text())
            validate_address(self.email_edit.text())
        except InputError as exc:
            return str(exc) if not str(exc).startswith("'") else _address_sentence(exc)
        return None

    def _on_input_changed(self) -> None:
        self.start_button.setEnabled(self._problem() is None)
        if self.error_label.isVisible() and self._problem() is None:
            self._show_error(None)

    def _on_email_editing_finished(self) -> None:
        if self.email_edit.text().strip():
            try:
                validate_address(self.email_edit.text())
            except InputError as exc:
                self._show_error(_address_sentence(exc))
                return
        self._show_error(None)

    def _show_error(self, text: str | None) -> None:
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))
        self.error_label.setAccessibleDescription(text or "")

    def accept(self) -> None:
        try:
            name = check_name(self.name_edit.text())
            address = validate_address(self.email_edit.text())
        except InputError as exc:
            message = str(exc)
            self._show_error(message if not message.startswith("'") else _address_sentence(exc))
            return
        self._result = (name, address)
        super().accept()

    def result_person(self) -> tuple[str, str]:
        """(name, normalised email) once accepted."""
        if self._result is None:
            raise RuntimeError("the dialog was not accepted")
        return self._result


def _address_sentence(exc: InputError) -> str:
    # The service's message quotes the input ("'x' is not a valid email address").
    return f"{exc} — for example alex@example.com."
