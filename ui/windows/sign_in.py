"""The sign-in dialog (T4): a team server's address, an email and a password.

Each failure is said inline, in words that say what to do next, never as a crash or a second
dialog: the server cannot be reached; its certificate is not trusted here, with its SHA-256
fingerprint and *Trust this certificate*; a wrong email or password; too many attempts, with
when to try again. *Forgot password?* has the server email a one-time code and sets a new
password with it, then signs in with that password.

`submit()`, `send_code()` and `set_new_password()` may be awaited (tests); the buttons run them
as the dialog's own tasks. The dialog is accepted once `keep` (the app's: the token into the
keyring) has kept the new sign-in, which is then `signed_in`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from services.api import (
    AuthenticationError,
    DeskbellError,
    NewSignIn,
    ServerUnreachableError,
    TooManyAttemptsError,
    UntrustedCertificateError,
    request_password_reset,
    set_password_with_code,
    sign_in_to_team,
    utcnow,
)
from ui.icons import app_icon
from ui.tasks import Tasks

__all__ = ["SignInDialog", "describe_problem"]


def describe_problem(
    error: DeskbellError, *, now: datetime, pinned: bool = False
) -> tuple[str, str | None]:
    """What to tell the person about a failed sign-in, and the certificate fingerprint to
    offer to trust (None: nothing to trust)."""
    if isinstance(error, UntrustedCertificateError):
        if error.fingerprint is None:
            return (_sentence(str(error)), None)
        if pinned:
            return (
                "The server's certificate is not the one this computer trusted: it may have "
                "been replaced, or someone may be in the way. Trust the new one only if your "
                "administrator confirms its SHA-256 fingerprint:",
                error.fingerprint,
            )
        return (
            "This computer does not trust the server's certificate. If it is your team's "
            "server, compare its SHA-256 fingerprint with the one your administrator gives "
            "you, then choose Trust this certificate:",
            error.fingerprint,
        )
    if isinstance(error, TooManyAttemptsError):
        wait = max(1, int((error.retry_at - now).total_seconds() + 0.999))
        at = error.retry_at.astimezone().strftime("%H:%M:%S")
        return (f"Too many failed attempts. Try again at {at} (in {wait} seconds).", None)
    if isinstance(error, AuthenticationError):
        return (_sentence(str(error)) if "code" in str(error) else "Wrong email or password.", None)
    if isinstance(error, ServerUnreachableError):
        return (f"{_sentence(str(error))} Check the address and the network.", None)
    return (_sentence(str(error)), None)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "Something went wrong."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


class SignInDialog(QDialog):
    """Sign in to a team server; `signed_in` once accepted."""

    def __init__(
        self,
        *,
        device: str,
        keep: Callable[[NewSignIn], None],
        server_url: str = "",
        email: str = "",
        now: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._device = device
        self._keep = keep
        self._now = now
        self._pin: str | None = None  # the fingerprint the person chose to trust
        self._offered: str | None = None  # the fingerprint shown, to trust on request
        self._tasks = Tasks(on_error=self._on_task_failed)
        self.signed_in: NewSignIn | None = None
        self.setWindowTitle("Sign in to your team")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("Sign in to your team")
        self.setMinimumWidth(480)

        self.pages = QStackedWidget(self)
        self.sign_in_page = self._build_sign_in_page(server_url, email)
        self.reset_page = self._build_reset_page()
        self.pages.addWidget(self.sign_in_page)
        self.pages.addWidget(self.reset_page)

        self.problem_label = QLabel("", self)
        self.problem_label.setObjectName("signInProblem")
        self.problem_label.setAccessibleName("Problem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # The palette's link colour is readable on light and dark themes alike (D6).
        self.problem_label.setStyleSheet("color: palette(link); font-weight: bold;")
        self.problem_label.hide()
        # The fingerprint in two lines of 16 pairs, fixed-width, to compare pair by pair.
        self.fingerprint_label = QLabel("", self)
        self.fingerprint_label.setAccessibleName("Certificate fingerprint (SHA-256)")
        self.fingerprint_label.setTextFormat(Qt.TextFormat.PlainText)
        self.fingerprint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fingerprint_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.fingerprint_label.hide()
        self.trust_button = QPushButton("&Trust this certificate", self)
        self.trust_button.setAccessibleName("Trust this certificate")
        self.trust_button.hide()
        self.trust_button.clicked.connect(self._on_trust_button_clicked)

        self.buttons = QDialogButtonBox(self)
        self.sign_in_button = QPushButton("&Sign in", self)
        self.sign_in_button.setAccessibleName("Sign in")
        self.sign_in_button.setDefault(True)
        cancel = QPushButton("Cancel", self)
        self.buttons.addButton(self.sign_in_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(cancel, QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self._on_sign_in_button_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        title = QLabel("Sign in to your team's Deskbell server", self)
        title.setStyleSheet("font-weight: bold;")
        layout.addWidget(title)
        layout.addWidget(self.pages)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.fingerprint_label)
        layout.addWidget(self.trust_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        for edit in (self.server_edit, self.email_edit, self.password_edit):
            edit.textChanged.connect(self._on_input_changed)
        self._on_input_changed()

    # --- building ------------------------------------------------------------------------------

    def _build_sign_in_page(self, server_url: str, email: str) -> QWidget:
        page = QWidget(self)
        self.server_edit = QLineEdit(server_url, page)
        self.server_edit.setPlaceholderText("https://desk.example.com")
        self.server_edit.setAccessibleName("Server address")
        self.email_edit = QLineEdit(email, page)
        self.email_edit.setPlaceholderText("alex@example.com")
        self.email_edit.setAccessibleName("Your email address")
        self.password_edit = QLineEdit(page)
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Password")
        self.forgot_button = QPushButton("&Forgot password?", page)
        self.forgot_button.setFlat(True)
        self.forgot_button.setAccessibleName("Forgot password")
        self.forgot_button.setStyleSheet("color: palette(link); text-align: left;")
        self.forgot_button.clicked.connect(self._on_forgot_button_clicked)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Ser&ver:", self.server_edit)
        form.addRow("&Email:", self.email_edit)
        form.addRow("&Password:", self.password_edit)
        form.addRow("", self.forgot_button)
        return page

    def _build_reset_page(self) -> QWidget:
        page = QWidget(self)
        self.reset_intro = QLabel(page)
        self.reset_intro.setWordWrap(True)
        self.send_code_button = QPushButton("&Email me a code", page)
        self.send_code_button.setAccessibleName("Email me a code")
        self.send_code_button.clicked.connect(self._on_send_code_button_clicked)
        self.code_edit = QLineEdit(page)
        self.code_edit.setAccessibleName("Code from the email")
        self.code_edit.setPlaceholderText("8 digits")
        self.new_password_edit = QLineEdit(page)
        self.new_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_password_edit.setAccessibleName("New password")
        self.new_password_edit.setPlaceholderText("at least 10 characters")
        self.repeat_edit = QLineEdit(page)
        self.repeat_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat_edit.setAccessibleName("New password again")
        self.set_password_button = QPushButton("Set &password and sign in", page)
        self.set_password_button.setAccessibleName("Set password and sign in")
        self.set_password_button.clicked.connect(self._on_set_password_button_clicked)
        self.back_button = QPushButton("&Back to sign in", page)
        self.back_button.setFlat(True)
        self.back_button.setStyleSheet("color: palette(link); text-align: left;")
        self.back_button.clicked.connect(self._on_back_button_clicked)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(self.reset_intro)
        form.addRow("", self.send_code_button)
        form.addRow("&Code:", self.code_edit)
        form.addRow("&New password:", self.new_password_edit)
        form.addRow("&Again:", self.repeat_edit)
        form.addRow("", self.set_password_button)
        form.addRow("", self.back_button)
        return page

    # --- what the person sees ------------------------------------------------------------------

    def show_problem(self, text: str | None, *, fingerprint: str | None = None) -> None:
        self.problem_label.setText(text or "")
        self.problem_label.setAccessibleDescription(text or "")
        self.problem_label.setVisible(bool(text))
        self._offered = fingerprint
        pairs = fingerprint.split(":") if fingerprint else []
        self.fingerprint_label.setText(
            "\n".join(":".join(pairs[i : i + 16]) for i in range(0, len(pairs), 16))
        )
        self.fingerprint_label.setAccessibleDescription(fingerprint or "")
        self.fingerprint_label.setVisible(fingerprint is not None)
        self.trust_button.setVisible(fingerprint is not None)

    def _busy(self, what: str | None) -> None:
        """While a call runs: the buttons wait, and a quiet line says what is happening."""
        for button in (self.sign_in_button, self.send_code_button, self.set_password_button):
            button.setEnabled(what is None)
        if what is not None:
            self.show_problem(None)
            self.problem_label.setText(what)
            self.problem_label.setStyleSheet("")
            self.problem_label.show()
        else:
            self.problem_label.setStyleSheet("color: palette(link); font-weight: bold;")
            self._on_input_changed()

    def _fail(self, error: DeskbellError) -> None:
        text, fingerprint = describe_problem(error, now=self._now(), pinned=self._pin is not None)
        self._busy(None)
        self.show_problem(text, fingerprint=fingerprint)

    def _on_input_changed(self) -> None:
        filled = all(e.text().strip() for e in (self.server_edit, self.email_edit))
        self.sign_in_button.setEnabled(filled and bool(self.password_edit.text()))
        self.forgot_button.setEnabled(filled)

    # --- the calls -----------------------------------------------------------------------------

    async def submit(self, *, password: str | None = None) -> bool:
        """Sign in with what is typed; True once kept and the dialog accepted."""
        self._busy("Signing in…")
        try:
            new = await sign_in_to_team(
                server_url=self.server_edit.text(),
                email=self.email_edit.text(),
                password=self.password_edit.text() if password is None else password,
                device=self._device,
                pin_sha256=self._pin,
            )
            self._keep(new)
        except DeskbellError as exc:
            self._fail(exc)
            return False
        self._busy(None)
        self.signed_in = new
        self.accept()
        return True

    async def send_code(self) -> bool:
        """Have the server email a reset code to the address typed."""
        self._busy("Asking the server to email a code…")
        try:
            await request_password_reset(
                server_url=self.server_edit.text(),
                email=self.email_edit.text(),
                pin_sha256=self._pin,
            )
        except DeskbellError as exc:
            self._fail(exc)
            return False
        self._busy(None)
        self.show_problem(None)
        self.reset_intro.setText(
            f"If {self.email_edit.text().strip()} has an account there, an email with a "
            "code is on its way. Type the code and a new password."
        )
        self.code_edit.setFocus()
        return True

    async def set_new_password(self) -> bool:
        """Set the new password with the emailed code, then sign in with it."""
        password = self.new_password_edit.text()
        if password != self.repeat_edit.text():
            self.show_problem("The two passwords are not the same.")
            return False
        self._busy("Setting the new password…")
        try:
            await set_password_with_code(
                server_url=self.server_edit.text(),
                email=self.email_edit.text(),
                code=self.code_edit.text(),
                password=password,
                pin_sha256=self._pin,
            )
        except DeskbellError as exc:
            self._fail(exc)
            return False
        self.password_edit.setText(password)
        return await self.submit(password=password)

    async def wait_idle(self) -> None:
        """Wait for every call the dialog started (tests)."""
        await self._tasks.drain()

    # --- slots ---------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.start(coro, name="sign-in")

    def _on_task_failed(self, error: BaseException) -> None:
        self._busy(None)
        self.show_problem(f"Something went wrong: {error}")

    def _on_sign_in_button_clicked(self) -> None:
        if self.pages.currentWidget() is self.sign_in_page and self.sign_in_button.isEnabled():
            self._spawn(self.submit())

    def _on_trust_button_clicked(self) -> None:
        """Trust the certificate shown, and do again what met it."""
        if self._offered is None:
            return
        self._pin = self._offered
        self.show_problem(None)
        if self.pages.currentWidget() is self.reset_page:
            self._spawn(self.send_code())
        elif self.password_edit.text():
            self._spawn(self.submit())

    def _on_forgot_button_clicked(self) -> None:
        self.show_problem(None)
        self.reset_intro.setText(
            f"Deskbell's server can email a one-time code to {self.email_edit.text().strip()}"
            " to set a new password."
        )
        self.pages.setCurrentWidget(self.reset_page)
        self.sign_in_button.hide()
        self.send_code_button.setFocus()

    def _on_back_button_clicked(self) -> None:
        self.show_problem(None)
        self.pages.setCurrentWidget(self.sign_in_page)
        self.sign_in_button.show()

    def _on_send_code_button_clicked(self) -> None:
        self._spawn(self.send_code())

    def _on_set_password_button_clicked(self) -> None:
        self._spawn(self.set_new_password())

    def reject(self) -> None:
        self._tasks.cancel()  # a sign-in still under way is not kept after Cancel
        super().reject()
