"""Settings: the workspace's outgoing (E9) and incoming (I1) mail, a person's notifications (M7).

Three tabs. **Email (SMTP)**: server, TLS mode, login (the password goes to the OS keyring
through the service, never to a file), From, the default delay, and *Send test email*, which
sends a real email and shows the server's answer. **Incoming mail (IMAP)** (I1, I5): the
mailbox to read, in the same style, with *Test connection*. **My notifications**: in-app
notifications, notification emails, sound, the delay, do not disturb now or on a weekly schedule; an
administrator may pick another user and edit theirs (M7). Below the tabs: start at login (D1).

All service calls are coroutines run as tasks the dialog keeps (qasync's asyncSlot keeps no
reference, NOTES.md); `save()`, `send_test_email()` and `test_imap()` can also be awaited
directly (tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from PySide6.QtCore import Qt, QTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from services.api import NotificationSettings, PersonInfo, PersonKind, Service, validate_address
from services.errors import (
    DeskbellError,
    InputError,
    MailboxError,
    MailServerError,
    SecretStoreUnavailable,
)
from ui.icons import app_icon

__all__ = [
    "DELAY_CHOICES",
    "DND_CHOICES",
    "IMAP_SECURITY_CHOICES",
    "SECURITY_CHOICES",
    "LoginStarter",
    "SettingsDialog",
]

log = logging.getLogger(__name__)

# (label, seconds); None: never email me (E1's per-user choices).
DELAY_CHOICES: tuple[tuple[str, int | None], ...] = (
    ("1 minute", 60),
    ("2 minutes", 120),
    ("5 minutes", 300),
    ("15 minutes", 900),
    ("1 hour", 3600),
    ("Never", None),
)
# (label, key) for "do not disturb now" (N6).
DND_CHOICES: tuple[tuple[str, str], ...] = (
    ("Off", "off"),
    ("For 30 minutes", "30m"),
    ("For 1 hour", "1h"),
    ("Until tomorrow morning", "tomorrow"),
)
DND_KEEP = "keep"  # an active "until …" that none of the choices above describes
MORNING = time(8, 0)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SECURITY_CHOICES = (
    ("STARTTLS (port 587)", "starttls", 587),
    ("TLS (port 465)", "tls", 465),
    ("None: plain text, local relay only", "none", 25),
)
IMAP_SECURITY_CHOICES = (
    ("TLS (port 993)", "tls", 993),
    ("STARTTLS (port 143)", "starttls", 143),
    ("None: plain text, local server only", "none", 143),
)
_PLAIN_WARNING = (
    "⚠ Without TLS, your password and every email cross the network in plain text. "
    "Choose this only for a mail {what} on this computer or a trusted local network."
)


class LoginStarter(Protocol):
    """Start at login (D1); `app.autostart` is one."""

    def is_enabled(self) -> bool: ...

    def enable(self) -> None: ...

    def disable(self) -> None: ...


def _label(text: str, parent: QWidget, *, name: str) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setAccessibleName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class SettingsDialog(QDialog):
    """`SettingsDialog(service=..., me=...)`, then `await dialog.load()`, then `show()`."""

    saved = Signal()

    def __init__(
        self,
        *,
        service: Service,
        me: PersonInfo,
        login_starter: LoginStarter | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.me = me
        self.login_starter = login_starter
        self._tasks: set[asyncio.Task[Any]] = set()
        self._people: list[PersonInfo] = [me]
        self._editing: PersonInfo = me
        self.setWindowTitle("Deskbell settings")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("Deskbell settings")
        self.setMinimumWidth(520)

        self.tabs = QTabWidget(self)
        self.tabs.setAccessibleName("Settings sections")
        self.tabs.addTab(self._build_email_tab(), "Email (SMTP)")
        self.tabs.addTab(self._build_imap_tab(), "Incoming mail (IMAP)")
        self.tabs.addTab(self._build_notifications_tab(), "My notifications")

        self.autostart_check = QCheckBox("Start Deskbell when I &log in", self)
        self.autostart_check.setAccessibleName("Start Deskbell when I log in")
        self.autostart_check.setVisible(login_starter is not None)
        if login_starter is not None:
            self.autostart_check.setChecked(login_starter.is_enabled())

        self.status_label = _label("", self, name="Settings status")
        self.status_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply,
            self,
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.ok_button.setAccessibleName("Save and close")
        self.apply_button.setAccessibleName("Save")
        self.buttons.accepted.connect(self._on_ok_clicked)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self._on_apply_clicked)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.autostart_check)
        layout.addWidget(self.status_label)
        layout.addWidget(self.buttons)
        self._fill_email_tab()
        self._fill_imap_tab()
        self._fill_notifications(me)

    # --- building ------------------------------------------------------------------------------

    def _build_email_tab(self) -> QWidget:
        tab = QWidget(self)
        self.host_edit = QLineEdit(tab)
        self.host_edit.setPlaceholderText("smtp.example.com")
        self.host_edit.setAccessibleName("SMTP server")
        self.port_spin = QSpinBox(tab)
        self.port_spin.setRange(1, 65535)
        self.port_spin.setAccessibleName("SMTP port")
        self.security_combo = QComboBox(tab)
        self.security_combo.setAccessibleName("Connection security")
        for text, value, _ in SECURITY_CHOICES:
            self.security_combo.addItem(text, value)
        self.plain_warning = _label(
            _PLAIN_WARNING.format(what="relay"), tab, name="Plain text warning"
        )
        self.plain_warning.setStyleSheet("color: palette(link); font-weight: bold;")
        self.username_edit = QLineEdit(tab)
        self.username_edit.setPlaceholderText("empty: no login (local relay)")
        self.username_edit.setAccessibleName("SMTP user name")
        self.password_edit = QLineEdit(tab)
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("leave empty to keep the saved password")
        self.password_edit.setAccessibleName("SMTP password")
        self.password_note = _label(
            "Kept in your system's keyring, never in a file.", tab, name="Password storage"
        )
        self.from_edit = QLineEdit(tab)
        self.from_edit.setAccessibleName("From address")
        self.from_name_edit = QLineEdit(tab)
        self.from_name_edit.setAccessibleName("From name")
        self.default_delay_spin = QSpinBox(tab)
        self.default_delay_spin.setRange(1, 24 * 3600)
        self.default_delay_spin.setSuffix(" s")
        self.default_delay_spin.setAccessibleName("Default delay before emailing, in seconds")
        self.default_delay_spin.setToolTip(
            "How long a message may stay unseen before it is emailed, for people who did not "
            "choose their own delay."
        )

        self.test_to_edit = QLineEdit(tab)
        self.test_to_edit.setAccessibleName("Send the test email to")
        self.test_button = QPushButton("Send &test email", tab)
        self.test_button.setAccessibleName("Send test email")
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.test_result = _label("", tab, name="Test email result")
        self.test_result.hide()
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_to_edit, 1)
        test_row.addWidget(self.test_button)

        self.admin_note = _label(
            "Only an administrator can change the workspace's email settings.",
            tab,
            name="Administrator note",
        )
        self.admin_note.setVisible(not self.me.is_admin)

        form = QFormLayout()
        form.addRow("&Server:", self.host_edit)
        form.addRow("&Port:", self.port_spin)
        form.addRow("Se&curity:", self.security_combo)
        form.addRow("", self.plain_warning)
        form.addRow("&User name:", self.username_edit)
        form.addRow("Pass&word:", self.password_edit)
        form.addRow("", self.password_note)
        form.addRow("&From address:", self.from_edit)
        form.addRow("From &name:", self.from_name_edit)
        form.addRow("Default &delay:", self.default_delay_spin)
        test_box = QGroupBox("Check the settings", tab)
        test_layout = QVBoxLayout(test_box)
        test_layout.addWidget(QLabel("Send a real email to:", test_box))
        test_layout.addLayout(test_row)
        test_layout.addWidget(self.test_result)

        layout = QVBoxLayout(tab)
        layout.addWidget(self.admin_note)
        layout.addLayout(form)
        layout.addWidget(test_box)
        layout.addStretch(1)
        self.security_combo.currentIndexChanged.connect(self._on_security_changed)
        for widget in (
            self.host_edit,
            self.port_spin,
            self.security_combo,
            self.username_edit,
            self.password_edit,
            self.from_edit,
            self.from_name_edit,
            self.default_delay_spin,
        ):
            widget.setEnabled(self.me.is_admin)
        return tab

    def _build_imap_tab(self) -> QWidget:
        tab = QWidget(self)
        self.imap_host_edit = QLineEdit(tab)
        self.imap_host_edit.setPlaceholderText("imap.example.com (empty: read no mailbox)")
        self.imap_host_edit.setAccessibleName("IMAP server")
        self.imap_port_spin = QSpinBox(tab)
        self.imap_port_spin.setRange(1, 65535)
        self.imap_port_spin.setAccessibleName("IMAP port")
        self.imap_security_combo = QComboBox(tab)
        self.imap_security_combo.setAccessibleName("IMAP connection security")
        for text, value, _ in IMAP_SECURITY_CHOICES:
            self.imap_security_combo.addItem(text, value)
        self.imap_plain_warning = _label(
            _PLAIN_WARNING.format(what="server"), tab, name="IMAP plain text warning"
        )
        self.imap_plain_warning.setStyleSheet("color: palette(link); font-weight: bold;")
        self.imap_username_edit = QLineEdit(tab)
        self.imap_username_edit.setAccessibleName("IMAP user name")
        self.imap_password_edit = QLineEdit(tab)
        self.imap_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.imap_password_edit.setPlaceholderText("leave empty to keep the saved password")
        self.imap_password_edit.setAccessibleName("IMAP password")
        imap_password_note = _label(
            "Kept in your system's keyring, never in a file.", tab, name="IMAP password storage"
        )
        self.imap_folder_edit = QLineEdit(tab)
        self.imap_folder_edit.setPlaceholderText("INBOX")
        self.imap_folder_edit.setAccessibleName("IMAP folder")
        self.create_items_check = QCheckBox("C&reate items from new mail", tab)
        self.create_items_check.setAccessibleName("Create items from new mail")
        self.create_items_check.setToolTip(
            "Mail that answers no conversation, from someone who is not a user, opens a new "
            "item with the sender as customer (I5)."
        )

        self.imap_test_button = QPushButton("Test &connection", tab)
        self.imap_test_button.setAccessibleName("Test IMAP connection")
        self.imap_test_button.clicked.connect(self._on_imap_test_button_clicked)
        self.imap_test_result = _label("", tab, name="IMAP test result")
        self.imap_test_result.hide()

        imap_admin_note = _label(
            "Only an administrator can change the workspace's mailbox settings.",
            tab,
            name="IMAP administrator note",
        )
        imap_admin_note.setVisible(not self.me.is_admin)

        form = QFormLayout()
        form.addRow("&Server:", self.imap_host_edit)
        form.addRow("&Port:", self.imap_port_spin)
        form.addRow("Se&curity:", self.imap_security_combo)
        form.addRow("", self.imap_plain_warning)
        form.addRow("&User name:", self.imap_username_edit)
        form.addRow("Pass&word:", self.imap_password_edit)
        form.addRow("", imap_password_note)
        form.addRow("&Folder:", self.imap_folder_edit)
        form.addRow("", self.create_items_check)
        test_box = QGroupBox("Check the settings", tab)
        test_layout = QVBoxLayout(test_box)
        test_row = QHBoxLayout()
        test_row.addWidget(QLabel("Log in and open the folder:", test_box), 1)
        test_row.addWidget(self.imap_test_button)
        test_layout.addLayout(test_row)
        test_layout.addWidget(self.imap_test_result)

        layout = QVBoxLayout(tab)
        layout.addWidget(imap_admin_note)
        layout.addLayout(form)
        layout.addWidget(test_box)
        layout.addStretch(1)
        self.imap_security_combo.currentIndexChanged.connect(self._on_imap_security_changed)
        for widget in (
            self.imap_host_edit,
            self.imap_port_spin,
            self.imap_security_combo,
            self.imap_username_edit,
            self.imap_password_edit,
            self.imap_folder_edit,
            self.create_items_check,
            self.imap_test_button,
        ):
            widget.setEnabled(self.me.is_admin)
        return tab

    def _build_notifications_tab(self) -> QWidget:
        tab = QWidget(self)
        self.person_combo = QComboBox(tab)
        self.person_combo.setAccessibleName("Whose notifications to edit")
        self.person_combo.addItem(f"{self.me.name} (me)", self.me.id)
        self.person_combo.currentIndexChanged.connect(self._on_person_changed)
        self.person_row = QWidget(tab)
        row = QHBoxLayout(self.person_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Settings &for:", self.person_row))
        row.addWidget(self.person_combo, 1)
        self.person_row.setVisible(self.me.is_admin)

        self.in_app_check = QCheckBox("Show &desktop notifications", tab)
        self.in_app_check.setAccessibleName("Desktop notifications")
        self.email_check = QCheckBox("Send me &emails about what I have not seen", tab)
        self.email_check.setAccessibleName("Notification emails")
        self.sound_check = QCheckBox("Play a &sound", tab)
        self.sound_check.setAccessibleName("Notification sound")
        self.delay_combo = QComboBox(tab)
        self.delay_combo.setAccessibleName("Email me after")
        for text, seconds in DELAY_CHOICES:
            self.delay_combo.addItem(text, seconds)
        self.email_check.toggled.connect(self.delay_combo.setEnabled)

        self.dnd_combo = QComboBox(tab)
        self.dnd_combo.setAccessibleName("Do not disturb")
        for text, key in DND_CHOICES:
            self.dnd_combo.addItem(text, key)
        self.weekly_check = QCheckBox("&Quiet hours every week", tab)
        self.weekly_check.setAccessibleName("Quiet hours every week")
        self.day_checks: list[QCheckBox] = []
        days = QHBoxLayout()
        for index, day in enumerate(WEEKDAYS):
            check = QCheckBox(day, tab)
            check.setAccessibleName(f"Quiet hours on {day}")
            check.setChecked(index < 5)
            self.day_checks.append(check)
            days.addWidget(check)
        self.quiet_from = QTimeEdit(QTime(18, 0), tab)
        self.quiet_from.setDisplayFormat("HH:mm")
        self.quiet_from.setAccessibleName("Quiet hours start")
        self.quiet_to = QTimeEdit(QTime(8, 0), tab)
        self.quiet_to.setDisplayFormat("HH:mm")
        self.quiet_to.setAccessibleName("Quiet hours end")
        times = QHBoxLayout()
        times.addWidget(QLabel("From", tab))
        times.addWidget(self.quiet_from)
        times.addWidget(QLabel("to", tab))
        times.addWidget(self.quiet_to)
        times.addWidget(QLabel("(ends the next day if earlier)", tab))
        times.addStretch(1)
        self.schedule_box = QWidget(tab)
        schedule = QVBoxLayout(self.schedule_box)
        schedule.setContentsMargins(24, 0, 0, 0)
        schedule.addLayout(days)
        schedule.addLayout(times)
        self.weekly_check.toggled.connect(self.schedule_box.setEnabled)

        form = QFormLayout()
        form.addRow("Email me &after:", self.delay_combo)
        form.addRow("Do not &disturb:", self.dnd_combo)
        dnd_note = _label(
            "Do not disturb silences the sound and desktop notifications; the tray still counts. "
            "Emails held meanwhile go out as one when it ends.",
            tab,
            name="Do not disturb explanation",
        )
        layout = QVBoxLayout(tab)
        layout.addWidget(self.person_row)
        layout.addWidget(self.in_app_check)
        layout.addWidget(self.email_check)
        layout.addWidget(self.sound_check)
        layout.addLayout(form)
        layout.addWidget(self.weekly_check)
        layout.addWidget(self.schedule_box)
        layout.addWidget(dnd_note)
        layout.addStretch(1)
        return tab

    # --- filling -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the people an administrator may edit, and the freshest settings."""
        me = await self.service.person_by_id(self.me.id)
        self.me = me
        if me.is_admin:
            self._people = [p for p in await self.service.people(kind=PersonKind.USER)]
        else:
            self._people = [me]
        self.person_combo.blockSignals(True)
        self.person_combo.clear()
        for person in self._people:
            label = f"{person.name} (me)" if person.id == me.id else person.name
            self.person_combo.addItem(f"{label} <{person.email}>", person.id)
        self.person_combo.setCurrentIndex(self.person_combo.findData(me.id))
        self.person_combo.blockSignals(False)
        self._fill_notifications(me)
        self._fill_email_tab()
        self._fill_imap_tab()

    def _fill_email_tab(self) -> None:
        config = self.service.config
        self.host_edit.setText(config("smtp.host"))
        self.port_spin.setValue(int(config("smtp.port")))
        self.security_combo.blockSignals(True)
        self.security_combo.setCurrentIndex(
            max(0, self.security_combo.findData(config("smtp.security")))
        )
        self.security_combo.blockSignals(False)
        self.plain_warning.setVisible(config("smtp.security") == "none")
        self.username_edit.setText(config("smtp.username"))
        self.from_edit.setText(config("smtp.from"))
        self.from_name_edit.setText(config("smtp.from_name"))
        self.default_delay_spin.setValue(int(config("unseen_delay_s")))
        if not self.test_to_edit.text():
            self.test_to_edit.setText(self.me.email)

    def _fill_imap_tab(self) -> None:
        config = self.service.config
        self.imap_host_edit.setText(config("imap.host"))
        self.imap_port_spin.setValue(int(config("imap.port")))
        self.imap_security_combo.blockSignals(True)
        self.imap_security_combo.setCurrentIndex(
            max(0, self.imap_security_combo.findData(config("imap.security")))
        )
        self.imap_security_combo.blockSignals(False)
        self.imap_plain_warning.setVisible(config("imap.security") == "none")
        self.imap_username_edit.setText(config("imap.username"))
        self.imap_folder_edit.setText(config("imap.folder"))
        self.create_items_check.setChecked(config("mail.create_items") == "true")

    def _fill_notifications(self, person: PersonInfo) -> None:
        self._editing = person
        s = person.settings
        self.in_app_check.setChecked(s.in_app)
        self.email_check.setChecked(s.email)
        self.delay_combo.setEnabled(s.email)
        self.sound_check.setChecked(s.sound)
        index = self.delay_combo.findData(s.delay_s)
        if index < 0:  # a delay set from the command line, not one of the choices
            self.delay_combo.addItem(f"{s.delay_s} seconds", s.delay_s)
            index = self.delay_combo.count() - 1
        self.delay_combo.setCurrentIndex(index)
        keep = self.dnd_combo.findData(DND_KEEP)
        if keep >= 0:
            self.dnd_combo.removeItem(keep)
        if s.dnd_until is not None and s.dnd_until > self.service.clock.now():
            local = s.dnd_until.astimezone()
            self.dnd_combo.addItem(f"Until {local:%a %H:%M}", DND_KEEP)
            self.dnd_combo.setCurrentIndex(self.dnd_combo.count() - 1)
        else:
            self.dnd_combo.setCurrentIndex(0)
        self.weekly_check.setChecked(bool(s.dnd_weekly))
        self.schedule_box.setEnabled(bool(s.dnd_weekly))
        if s.dnd_weekly:
            days = {w[0] for w in s.dnd_weekly}
            for index, check in enumerate(self.day_checks):
                check.setChecked(index in days)
            _, start, end = s.dnd_weekly[0]
            self.quiet_from.setTime(QTime(start // 60, start % 60))
            self.quiet_to.setTime(QTime((end // 60) % 24, end % 60))

    # --- reading back --------------------------------------------------------------------------

    def notification_settings(self) -> NotificationSettings:
        """What the notifications tab says now, for the person being edited."""
        delay: int | None = self.delay_combo.currentData()
        return NotificationSettings(
            in_app=self.in_app_check.isChecked(),
            email=self.email_check.isChecked(),
            sound=self.sound_check.isChecked(),
            delay_s=delay,
            dnd_until=self._dnd_until(),
            dnd_weekly=self._weekly_windows(),
        )

    def _dnd_until(self) -> datetime | None:
        key = self.dnd_combo.currentData()
        now = self.service.clock.now()
        if key == "30m":
            return now + timedelta(minutes=30)
        if key == "1h":
            return now + timedelta(hours=1)
        if key == "tomorrow":
            local = now.astimezone()
            morning = datetime.combine(local.date() + timedelta(days=1), MORNING, local.tzinfo)
            return morning.astimezone(now.tzinfo)
        if key == DND_KEEP:
            return self._editing.settings.dnd_until
        return None

    def _weekly_windows(self) -> tuple[tuple[int, int, int], ...]:
        if not self.weekly_check.isChecked():
            return ()
        start_t, end_t = self.quiet_from.time(), self.quiet_to.time()
        start = start_t.hour() * 60 + start_t.minute()
        end = end_t.hour() * 60 + end_t.minute()
        if end == 0 and start > 0:
            end = 1440  # "until midnight"
        return tuple((d, start, end) for d, c in enumerate(self.day_checks) if c.isChecked())

    # --- saving --------------------------------------------------------------------------------

    async def save(self) -> bool:
        """Write everything that changed; show what went wrong and return False if anything did."""
        self._show_status(None)
        try:
            if self.me.is_admin:
                await self._save_email_settings()
                await self._save_imap_settings()
            self._save_password()
            self._save_imap_password()
            person = await self.service.set_notification_settings(
                person_id=self._editing.id,
                settings=self.notification_settings(),
                acting_id=self.me.id,
            )
            self._replace_person(person)
            self._save_autostart()
        except SecretStoreUnavailable as exc:
            self._show_status(
                "Could not save the password: no system keyring is available. "
                f"Deskbell never writes passwords to a file. ({exc})"
            )
            return False
        except (DeskbellError, OSError) as exc:
            self._show_status(f"Not saved: {exc}")
            return False
        self.saved.emit()
        return True

    async def _save_email_settings(self) -> None:
        if self.from_edit.text().strip():
            validate_address(self.from_edit.text())
        wanted = {
            "smtp.host": self.host_edit.text().strip(),
            "smtp.port": str(self.port_spin.value()),
            "smtp.security": str(self.security_combo.currentData()),
            "smtp.username": self.username_edit.text().strip(),
            "smtp.from": self.from_edit.text().strip(),
            "smtp.from_name": self.from_name_edit.text().strip(),
            "unseen_delay_s": str(self.default_delay_spin.value()),
        }
        for key, value in wanted.items():
            if value != self.service.config(key):
                await self.service.set_config(key, value)

    async def _save_imap_settings(self) -> None:
        wanted = {
            "imap.host": self.imap_host_edit.text().strip(),
            "imap.port": str(self.imap_port_spin.value()),
            "imap.security": str(self.imap_security_combo.currentData()),
            "imap.username": self.imap_username_edit.text().strip(),
            "imap.folder": self.imap_folder_edit.text().strip() or "INBOX",
            "mail.create_items": "true" if self.create_items_check.isChecked() else "false",
        }
        for key, value in wanted.items():
            if value != self.service.config(key):
                await self.service.set_config(key, value)

    def _save_imap_password(self) -> None:
        password = self.imap_password_edit.text()
        if not password:
            return
        if not self.me.is_admin:
            raise InputError("only an administrator can change the mailbox password")
        self.service.set_imap_password(password)
        self.imap_password_edit.clear()
        self.imap_password_edit.setPlaceholderText("saved in the keyring; type to replace it")

    def _save_password(self) -> None:
        password = self.password_edit.text()
        if not password:
            return
        if not self.me.is_admin:
            raise InputError("only an administrator can change the mail password")
        self.service.set_smtp_password(password)
        self.password_edit.clear()
        self.password_edit.setPlaceholderText("saved in the keyring; type to replace it")

    def _save_autostart(self) -> None:
        starter = self.login_starter
        if starter is None:
            return
        wanted = self.autostart_check.isChecked()
        if wanted != starter.is_enabled():
            if wanted:
                starter.enable()
            else:
                starter.disable()

    def _replace_person(self, person: PersonInfo) -> None:
        self._people = [person if p.id == person.id else p for p in self._people]
        if person.id == self.me.id:
            self.me = person
        self._editing = person

    async def send_test_email(self) -> str | None:
        """Save the mail settings, send a real test email; the server's answer, shown too."""
        self.test_button.setEnabled(False)
        self._show_test(None, ok=True)
        try:
            to = validate_address(self.test_to_edit.text())
            if self.me.is_admin:
                await self._save_email_settings()
            self._save_password()
            self._show_test("Sending…", ok=True)
            answer = await self.service.send_test_email(to=to)
        except SecretStoreUnavailable as exc:
            self._show_test(f"No system keyring for the password: {exc}", ok=False)
            return None
        except MailServerError as exc:
            self._show_test(f"Not sent: {exc}", ok=False)
            return None
        except (DeskbellError, OSError) as exc:
            self._show_test(f"Not sent: {exc}", ok=False)
            return None
        finally:
            self.test_button.setEnabled(True)
        self._show_test(f"Sent to {to}. The server answered: {answer}", ok=True)
        return answer

    async def test_imap(self) -> str | None:
        """Save the mailbox settings, log in and open the folder; the server's answer, shown too."""
        self.imap_test_button.setEnabled(False)
        self._show_imap_test(None, ok=True)
        try:
            if self.me.is_admin:
                await self._save_imap_settings()
            self._save_imap_password()
            self._show_imap_test("Connecting…", ok=True)
            answer = await self.service.test_imap()
        except SecretStoreUnavailable as exc:
            self._show_imap_test(f"No system keyring for the password: {exc}", ok=False)
            return None
        except MailboxError as exc:
            self._show_imap_test(f"Could not read the mailbox: {exc}", ok=False)
            return None
        except (DeskbellError, OSError) as exc:
            self._show_imap_test(f"Not tested: {exc}", ok=False)
            return None
        finally:
            self.imap_test_button.setEnabled(self.me.is_admin)
        self._show_imap_test(answer, ok=True)
        return answer

    # --- feedback ------------------------------------------------------------------------------

    def _show_status(self, text: str | None) -> None:
        self.status_label.setText(text or "")
        self.status_label.setAccessibleDescription(text or "")
        self.status_label.setVisible(bool(text))
        self.status_label.setStyleSheet("color: palette(link); font-weight: bold;")

    def _show_test(self, text: str | None, *, ok: bool) -> None:
        self.test_result.setText(text or "")
        self.test_result.setAccessibleDescription(text or "")
        self.test_result.setVisible(bool(text))
        self.test_result.setStyleSheet("" if ok else "color: palette(link); font-weight: bold;")

    def _show_imap_test(self, text: str | None, *, ok: bool) -> None:
        self.imap_test_result.setText(text or "")
        self.imap_test_result.setAccessibleDescription(text or "")
        self.imap_test_result.setVisible(bool(text))
        self.imap_test_result.setStyleSheet(
            "" if ok else "color: palette(link); font-weight: bold;"
        )

    # --- slots ---------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        # qasync's asyncSlot keeps no reference to its task; a task nobody holds can be
        # collected mid-flight (NOTES.md), so the dialog holds them until they finish.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("settings task failed", exc_info=task.exception())
            self._show_status(f"Something went wrong: {task.exception()}")

    async def wait_idle(self) -> None:
        """Wait for every task the dialog started (tests, and close)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _on_security_changed(self, index: int) -> None:
        value = self.security_combo.itemData(index)
        self.plain_warning.setVisible(value == "none")
        # Follow the port if it was the previous mode's usual one.
        usual = {p for _, _, p in SECURITY_CHOICES}
        if self.port_spin.value() in usual:
            self.port_spin.setValue(next(p for _, v, p in SECURITY_CHOICES if v == value))

    def _on_imap_security_changed(self, index: int) -> None:
        value = self.imap_security_combo.itemData(index)
        self.imap_plain_warning.setVisible(value == "none")
        usual = {p for _, _, p in IMAP_SECURITY_CHOICES}
        if self.imap_port_spin.value() in usual:
            self.imap_port_spin.setValue(next(p for _, v, p in IMAP_SECURITY_CHOICES if v == value))

    def _on_imap_test_button_clicked(self) -> None:
        self._spawn(self.test_imap())

    def _on_test_button_clicked(self) -> None:
        self._spawn(self.send_test_email())

    def _on_apply_clicked(self) -> None:
        self._spawn(self.save())

    def _on_ok_clicked(self) -> None:
        async def save_and_close() -> None:
            if await self.save():
                self.accept()

        self._spawn(save_and_close())

    def _on_person_changed(self, index: int) -> None:
        person_id = self.person_combo.itemData(index)
        person = next((p for p in self._people if p.id == person_id), None)
        if person is not None:
            self._fill_notifications(person)

    def done(self, result: int) -> None:
        for task in list(self._tasks):
            if not task.done() and result != QDialog.DialogCode.Accepted:
                task.cancel()
        super().done(result)
