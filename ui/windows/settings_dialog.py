"""Settings: the workspace's outgoing (E9) and incoming (I1) mail, a person's notifications (M7).

Three tabs. **Email (SMTP)**: server, TLS mode, login (the password goes to the OS keyring
through the service, never to a file), From, the default delay, and *Send test email*, which
sends a real email and shows the server's answer. **Incoming mail (IMAP)** (I1, I5): the
mailbox to read, in the same style, with *Test connection*. **My notifications**: in-app
notifications, notification emails, sound, the delay, do not disturb now or on a weekly schedule; an
administrator may pick another user and edit theirs (M7). Below the tabs: start at login (D1)
and the opt-in daily check for updates (ui/windows/update_check.py).

All service calls are coroutines run as tasks the dialog keeps (qasync's asyncSlot keeps no
reference, NOTES.md); `save()`, `send_test_email()` and `test_imap()` can also be awaited
directly (tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
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

from services.api import (
    DeskbellError,
    InputError,
    MailboxError,
    MailServerError,
    NotificationSettings,
    PersonInfo,
    PersonKind,
    SecretStoreUnavailable,
    Service,
    TeamAccount,
    dnd_until_choice,
    validate_address,
)
from ui.icons import app_icon
from ui.policies.dnd import dnd_state
from ui.tasks import Tasks
from ui.widgets.center_style import style_sheet, theme_for
from ui.widgets.mail_server_section import (
    MailServer,
    MailServerKind,
    MailServerSection,
    note_label,
)
from ui.windows.update_check import UpdatePrefs

if TYPE_CHECKING:
    from services.api import TeamSync
    from ui.windows.account_section import AccountSection

__all__ = [
    "DELAY_CHOICES",
    "DND_CHOICES",
    "IMAP",
    "SMTP",
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
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SMTP = MailServerKind(
    protocol="SMTP",
    security=(
        ("STARTTLS (port 587)", "starttls", 587),
        ("TLS (port 465)", "tls", 465),
        ("None: plain text, local relay only", "none", 25),
    ),
    host_placeholder="smtp.example.com",
    username_placeholder="empty: no login (local relay)",
    plain_what="relay",
    admin_note="Only an administrator can change the workspace's email settings.",
    test_text="Send &test email",
    test_name="Send test email",
    test_caption="Send a real email to:",
)
IMAP = MailServerKind(
    protocol="IMAP",
    security=(
        ("TLS (port 993)", "tls", 993),
        ("STARTTLS (port 143)", "starttls", 143),
        ("None: plain text, local server only", "none", 143),
    ),
    host_placeholder="imap.example.com (empty: read no mailbox)",
    username_placeholder="",
    plain_what="server",
    admin_note="Only an administrator can change the workspace's mailbox settings.",
    test_text="Test &connection",
    test_name="Test IMAP connection",
    test_caption="Log in and open the folder:",
)


class LoginStarter(Protocol):
    """Start at login (D1); `app.autostart` is one."""

    def is_enabled(self) -> bool: ...

    def enable(self) -> None: ...

    def disable(self) -> None: ...


class SettingsDialog(QDialog):
    """`SettingsDialog(service=..., me=...)`, then `await dialog.load()`, then `show()`."""

    saved = Signal()
    sign_out_requested = Signal()  # T4: the Account tab's "Sign out" (team mode)

    def __init__(
        self,
        *,
        service: Service,
        me: PersonInfo,
        login_starter: LoginStarter | None = None,
        updates: UpdatePrefs | None = None,
        team_account: TeamAccount | None = None,
        connection: TeamSync | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.me = me
        self.login_starter = login_starter
        self.updates = updates
        # The dialog's own tasks (qasync's asyncSlot keeps none, NOTES.md); a failure is shown.
        self._tasks = Tasks(on_error=self._on_task_failed)
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
        self.account_section: AccountSection | None = None
        if team_account is not None:
            # T4, T5: in a team the server sends the emails and reads the mailbox.
            from ui.windows.account_section import AccountSection

            self.account_section = AccountSection(
                account=team_account, connection=connection, parent=self
            )
            self.account_section.sign_out_requested.connect(self.sign_out_requested)
            self.tabs.insertTab(0, self.account_section, "Account")
            self.tabs.setCurrentIndex(0)
            for mail_tab in (1, 2):  # the server's mail settings are the Messaging Center's
                self.tabs.setTabVisible(mail_tab, False)

        self.autostart_check = QCheckBox("Start Deskbell when I &log in", self)
        self.autostart_check.setAccessibleName("Start Deskbell when I log in")
        self.autostart_check.setVisible(login_starter is not None)
        if login_starter is not None:
            self.autostart_check.setChecked(login_starter.is_enabled())
        self.updates_check = QCheckBox("Check for &updates once a day", self)
        self.updates_check.setAccessibleName("Check for updates once a day")
        self.updates_check.setVisible(updates is not None)
        self.updates_check.setChecked(updates is not None and updates.enabled())

        self.status_label = note_label("", self, name="Settings status")
        self.status_label.hide()
        # Plain, labelled buttons (stock ones carry icons in Fusion), Save as the primary.
        self.buttons = QDialogButtonBox(self)
        self.ok_button = QPushButton("Save", self)
        self.ok_button.setObjectName("mcPrimary")
        self.ok_button.setDefault(True)
        self.apply_button = QPushButton("Apply", self)
        cancel = QPushButton("Cancel", self)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.apply_button, QDialogButtonBox.ButtonRole.ApplyRole)
        self.buttons.addButton(cancel, QDialogButtonBox.ButtonRole.RejectRole)
        self.ok_button.setAccessibleName("Save and close")
        self.apply_button.setAccessibleName("Save")
        self.buttons.accepted.connect(self._on_ok_clicked)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self._on_apply_clicked)

        self.setStyleSheet(style_sheet(theme_for(self)))  # the Messaging Center's look
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.autostart_check)
        layout.addWidget(self.updates_check)
        layout.addWidget(self.status_label)
        layout.addWidget(self.buttons)
        self._fill_email_tab()
        self._fill_imap_tab()
        self._fill_notifications(me)

    # --- building ------------------------------------------------------------------------------

    def _build_email_tab(self) -> QWidget:
        self.smtp = MailServerSection(kind=SMTP, editable=self.me.is_admin, parent=self)
        self.from_edit = QLineEdit(self.smtp)
        self.from_edit.setAccessibleName("From address")
        self.from_name_edit = QLineEdit(self.smtp)
        self.from_name_edit.setAccessibleName("From name")
        self.default_delay_spin = QSpinBox(self.smtp)
        self.default_delay_spin.setRange(1, 24 * 3600)
        self.default_delay_spin.setSuffix(" s")
        self.default_delay_spin.setAccessibleName("Default delay before emailing, in seconds")
        self.default_delay_spin.setToolTip(
            "How long a message may stay unseen before it is emailed, for people who did not "
            "choose their own delay."
        )
        self.smtp.add_row("&From address:", self.from_edit)
        self.smtp.add_row("From &name:", self.from_name_edit)
        self.smtp.add_row("Default &delay:", self.default_delay_spin)
        self.test_to_edit = QLineEdit(self.smtp)
        self.test_to_edit.setAccessibleName("Send the test email to")
        self.smtp.test_row.addWidget(self.test_to_edit, 1)
        self.smtp.test_row.addWidget(self.smtp.test_button)
        self.smtp.test_requested.connect(self._on_smtp_test_requested)
        return self.smtp

    def _build_imap_tab(self) -> QWidget:
        self.imap = MailServerSection(kind=IMAP, editable=self.me.is_admin, parent=self)
        self.imap_folder_edit = QLineEdit(self.imap)
        self.imap_folder_edit.setPlaceholderText("INBOX")
        self.imap_folder_edit.setAccessibleName("IMAP folder")
        self.create_items_check = QCheckBox("C&reate items from new mail", self.imap)
        self.create_items_check.setAccessibleName("Create items from new mail")
        self.create_items_check.setToolTip(
            "Mail that answers no conversation, from someone who is not a user, opens a new "
            "item with the sender as its customer."
        )
        self.imap.add_row("&Folder:", self.imap_folder_edit)
        self.imap.add_row("", self.create_items_check)
        self.imap.test_row.addStretch(1)
        self.imap.test_row.addWidget(self.imap.test_button)
        self.imap.test_button.setEnabled(self.me.is_admin)
        self.imap.test_requested.connect(self._on_imap_test_requested)
        return self.imap

    def _build_notifications_tab(self) -> QWidget:
        tab = QWidget(self)
        self.person_combo = QComboBox(tab)
        self.person_combo.setAccessibleName("Whose notifications to edit")
        self.person_combo.addItem(f"{self.me.name} (me)", self.me.id)
        self.person_combo.currentIndexChanged.connect(self._on_person_changed)
        self.person_row = QWidget(tab)
        row = QHBoxLayout(self.person_row)
        row.setContentsMargins(0, 0, 0, 0)
        person_label = QLabel("Settings &for:", self.person_row)
        person_label.setBuddy(self.person_combo)  # without a buddy the & shows as is
        row.addWidget(person_label)
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
        dnd_note = note_label(
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
        self.smtp.fill(_server(config, "smtp"))
        self.from_edit.setText(config("smtp.from"))
        self.from_name_edit.setText(config("smtp.from_name"))
        self.default_delay_spin.setValue(int(config("unseen_delay_s")))
        if not self.test_to_edit.text():
            self.test_to_edit.setText(self.me.email)

    def _fill_imap_tab(self) -> None:
        config = self.service.config
        self.imap.fill(_server(config, "imap"))
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
        # Only the "for a while" part: the weekly hours have their own boxes below.
        until = dnd_state(
            NotificationSettings(dnd_until=s.dnd_until),
            now_local=self.service.clock.now().astimezone(),
        )
        if until.active:
            self.dnd_combo.addItem(until.short, DND_KEEP)
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
        if key == DND_KEEP:
            return self._editing.settings.dnd_until
        if key in ("30m", "1h", "tomorrow"):
            return dnd_until_choice(key, now_local=self.service.clock.now().astimezone())
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
            if self.account_section is None:  # in a team the mail is the server's (T3)
                if self.me.is_admin:
                    await self._save_email_settings()
                    await self._save_imap_settings()
                self._save_password(self.smtp)
                self._save_password(self.imap)
            person = await self.service.set_notification_settings(
                person_id=self._editing.id,
                settings=self.notification_settings(),
                acting_id=self.me.id,
            )
            self._replace_person(person)
            self._save_autostart()
            if self.updates is not None:
                self.updates.set_enabled(self.updates_check.isChecked())
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
        await self._save_config(
            {
                **_server_config("smtp", self.smtp.server()),
                "smtp.from": self.from_edit.text().strip(),
                "smtp.from_name": self.from_name_edit.text().strip(),
                "unseen_delay_s": str(self.default_delay_spin.value()),
            }
        )

    async def _save_imap_settings(self) -> None:
        await self._save_config(
            {
                **_server_config("imap", self.imap.server()),
                "imap.folder": self.imap_folder_edit.text().strip() or "INBOX",
                "mail.create_items": "true" if self.create_items_check.isChecked() else "false",
            }
        )

    async def _save_config(self, wanted: dict[str, str]) -> None:
        for key, value in wanted.items():
            if value != self.service.config(key):
                await self.service.set_config(key, value)

    def _save_password(self, section: MailServerSection) -> None:
        password = section.new_password()
        if not password:
            return
        if not self.me.is_admin:
            raise InputError(
                f"only an administrator can change the {section.kind.protocol} password"
            )
        if section is self.smtp:
            self.service.set_smtp_password(password)
        else:
            self.service.set_imap_password(password)
        section.password_saved()

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
        self.smtp.test_button.setEnabled(False)
        self.smtp.show_test(None, ok=True)
        try:
            to = validate_address(self.test_to_edit.text())
            if self.me.is_admin:
                await self._save_email_settings()
            self._save_password(self.smtp)
            self.smtp.show_test("Sending…", ok=True)
            answer = await self.service.send_test_email(to=to)
        except SecretStoreUnavailable as exc:
            self.smtp.show_test(f"No system keyring for the password: {exc}", ok=False)
            return None
        except MailServerError as exc:
            self.smtp.show_test(f"Not sent: {exc}", ok=False)
            return None
        except (DeskbellError, OSError) as exc:
            self.smtp.show_test(f"Not sent: {exc}", ok=False)
            return None
        finally:
            self.smtp.test_button.setEnabled(True)
        self.smtp.show_test(f"Sent to {to}. The server answered: {answer}", ok=True)
        return answer

    async def test_imap(self) -> str | None:
        """Save the mailbox settings, log in and open the folder; the server's answer, shown too."""
        self.imap.test_button.setEnabled(False)
        self.imap.show_test(None, ok=True)
        try:
            if self.me.is_admin:
                await self._save_imap_settings()
            self._save_password(self.imap)
            self.imap.show_test("Connecting…", ok=True)
            answer = await self.service.test_imap()
        except SecretStoreUnavailable as exc:
            self.imap.show_test(f"No system keyring for the password: {exc}", ok=False)
            return None
        except MailboxError as exc:
            self.imap.show_test(f"Could not read the mailbox: {exc}", ok=False)
            return None
        except (DeskbellError, OSError) as exc:
            self.imap.show_test(f"Not tested: {exc}", ok=False)
            return None
        finally:
            self.imap.test_button.setEnabled(self.me.is_admin)
        self.imap.show_test(answer, ok=True)
        return answer

    # --- feedback ------------------------------------------------------------------------------

    def _show_status(self, text: str | None) -> None:
        self.status_label.setText(text or "")
        self.status_label.setAccessibleDescription(text or "")
        self.status_label.setVisible(bool(text))
        self.status_label.setStyleSheet("color: palette(link); font-weight: bold;")

    # --- slots ---------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._tasks.start(coro, name="settings")

    def _on_task_failed(self, error: BaseException) -> None:
        self._show_status(f"Something went wrong: {error}")

    async def wait_idle(self) -> None:
        """Wait for every task the dialog started (tests, and close)."""
        await self._tasks.drain()

    def _on_imap_test_requested(self) -> None:
        self._spawn(self.test_imap())

    def _on_smtp_test_requested(self) -> None:
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
        if result != QDialog.DialogCode.Accepted:
            self._tasks.cancel()  # closed mid-save or mid-test: nothing more to show
        super().done(result)


def _server(config: Callable[[str], str], prefix: str) -> MailServer:
    return MailServer(
        host=config(f"{prefix}.host"),
        port=int(config(f"{prefix}.port")),
        security=config(f"{prefix}.security"),
        username=config(f"{prefix}.username"),
    )


def _server_config(prefix: str, server: MailServer) -> dict[str, str]:
    return {
        f"{prefix}.host": server.host,
        f"{prefix}.port": str(server.port),
        f"{prefix}.security": server.security,
        f"{prefix}.username": server.username,
    }
