"""The first-run dialog: how Deskbell is used here, then who you are.

Its first page offers the two ways (T5): *Work on this computer only* (a workspace of one's
own, whose first user is asked for on the next page: name and email) and *Sign in to my team*
(the dialog ends with `choice` TEAM; the app then shows the sign-in dialog).
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCommandLinkButton,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from services.api import InputError, validate_address, validate_name
from ui.icons import app_icon, app_icon_pixmap

__all__ = ["FirstRunChoice", "FirstRunDialog", "check_name"]

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


class FirstRunChoice(Enum):
    LOCAL = "local"  # work on this computer only
    TEAM = "team"  # sign in to a team server


class FirstRunDialog(QDialog):
    """First the choice (`offer_team`), then the first user's name and email; Start stays
    disabled until both are valid. Accepted with `choice` LOCAL and `result_person()`, or
    with `choice` TEAM."""

    def __init__(self, parent: QWidget | None = None, *, offer_team: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Deskbell")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("Welcome to Deskbell")
        self.setMinimumWidth(440)
        self._result: tuple[str, str] | None = None
        self.choice: FirstRunChoice | None = None
        self._offer_team = offer_team

        logo = QLabel(self)
        logo.setPixmap(app_icon_pixmap(size=48, dpr=self.devicePixelRatioF()))
        logo.setAccessibleName("Deskbell logo")
        title = QLabel("Welcome to Deskbell", self)
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        title.setAccessibleName("Welcome to Deskbell")
        self.intro = QLabel(self)
        self.intro.setWordWrap(True)
        header = QHBoxLayout()
        header.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        texts = QVBoxLayout()
        texts.addWidget(title)
        texts.addWidget(self.intro)
        header.addLayout(texts, 1)

        self.pages = QStackedWidget(self)
        self.choice_page = self._build_choice_page()
        self.person_page = QWidget(self)
        self.pages.addWidget(self.choice_page)
        self.pages.addWidget(self.person_page)

        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("Alex Morgan")
        self.name_edit.setAccessibleName("Your name")
        self.name_edit.setMaxLength(MAX_NAME_CHARS + 20)
        self.email_edit = QLineEdit(self)
        self.email_edit.setPlaceholderText("alex@example.com")
        self.email_edit.setAccessibleName("Your email address")
        self.email_edit.setInputMethodHints(Qt.InputMethodHint.ImhEmailCharactersOnly)
        form = QFormLayout(self.person_page)
        form.setContentsMargins(0, 0, 0, 0)
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
        self.back_button = QPushButton("&Back", self)
        self.back_button.setAccessibleName("Back to the choice")
        self.buttons.addButton(self.back_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.back_button.clicked.connect(self._on_back_button_clicked)
        self.start_button = QPushButton("&Start", self)
        self.start_button.setAccessibleName("Start using Deskbell")
        self.start_button.setDefault(True)
        self.buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addLayout(header)
        layout.addWidget(self.pages)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.name_edit.textChanged.connect(self._on_input_changed)
        self.email_edit.textChanged.connect(self._on_input_changed)
        self.email_edit.editingFinished.connect(self._on_email_editing_finished)
        self._on_input_changed()
        if offer_team:
            self._show_page(self.choice_page)
        else:
            self._on_local_button_clicked()

    def _build_choice_page(self) -> QWidget:
        page = QWidget(self)
        self.local_button = QCommandLinkButton(
            "Work on this computer only",
            "Your own workspace on this computer. Deskbell sends its emails itself.",
            page,
        )
        self.local_button.setAccessibleName("Work on this computer only")
        self.team_button = QCommandLinkButton(
            "Sign in to my team",
            "Your team's Deskbell server keeps the conversations. Sign in with your work "
            "email and password.",
            page,
        )
        self.team_button.setAccessibleName("Sign in to my team")
        self.local_button.clicked.connect(self._on_local_button_clicked)
        self.team_button.clicked.connect(self._on_team_button_clicked)
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.local_button)
        column.addWidget(self.team_button)
        return page

    def _show_page(self, page: QWidget) -> None:
        on_choice = page is self.choice_page
        self.pages.setCurrentWidget(page)
        self.intro.setText(
            "How will you use Deskbell on this computer?"
            if on_choice
            else "Tell your teammates and customers who you are. Your email address is "
            "where Deskbell sends what you have not seen within a minute."
        )
        self.start_button.setVisible(not on_choice)
        self.back_button.setVisible(self._offer_team and not on_choice)
        self._show_error(None)
        (self.local_button if on_choice else self.name_edit).setFocus()

    def _on_local_button_clicked(self) -> None:
        self.choice = FirstRunChoice.LOCAL
        self._show_page(self.person_page)

    def _on_team_button_clicked(self) -> None:
        self.choice = FirstRunChoice.TEAM
        super().accept()

    def _on_back_button_clicked(self) -> None:
        self.choice = None
        self._show_page(self.choice_page)

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
        if self.pages.currentWidget() is not self.person_page:
            return  # Enter on the choice page chooses nothing
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
