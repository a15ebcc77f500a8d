"""The settings dialog against a real Service and a real SMTP server (E9, R5, N6, M7, D1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import keyring
import pytest
import shiboken6
from keyring.backends import fail
from PySide6.QtCore import QSettings, Qt, QTime
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLineEdit, QPushButton, QSpinBox
from pytestqt.qtbot import QtBot

from services.api import Service
from services.clock import ManualClock
from tests.support.dovecot import DovecotServer
from tests.support.smtpd import SmtpServer
from tests.support.world import World
from ui.windows.settings_dialog import SettingsDialog
from ui.windows.update_check import UpdatePrefs

_open_dialogs: list[SettingsDialog] = []


@pytest.fixture(autouse=True)
def _delete_dialogs() -> Iterator[None]:
    """Destroy each test's Qt objects here, in the GUI thread.

    Left to the garbage collector, Qt objects in reference cycles (a dialog through its signal
    connections, the qasync loop's timers) are destroyed in whatever thread runs the next
    collection, such as the one running the next test's migrations, and Qt warns that
    "Timers cannot be stopped from another thread".
    """
    yield
    while _open_dialogs:
        dialog = _open_dialogs.pop()
        dialog.close()
        shiboken6.delete(dialog)


async def make(qtbot: QtBot, service: Service, person_id: int, **kwargs: object) -> SettingsDialog:
    me = await service.person_by_id(person_id)
    dialog = SettingsDialog(service=service, me=me, **kwargs)  # type: ignore[arg-type]
    _open_dialogs.append(dialog)
    await dialog.load()
    dialog.show()
    return dialog


class FakeStarter:
    """Start-at-login that records instead of writing to this machine's session."""

    def __init__(self) -> None:
        self.enabled = False

    def is_enabled(self) -> bool:
        return self.enabled

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


async def test_e9_dialog_saves_smtp_settings(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    dialog.smtp.host_edit.setText("mail.example.com")
    dialog.smtp.security_combo.setCurrentIndex(dialog.smtp.security_combo.findData("tls"))
    assert dialog.smtp.port_spin.value() == 465  # followed the TLS mode's usual port
    dialog.smtp.username_edit.setText("helpdesk")
    dialog.from_edit.setText("Support@Example.com")
    dialog.from_name_edit.setText("Example Support")
    dialog.default_delay_spin.setValue(90)
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    assert not dialog.status_label.isVisible(), dialog.status_label.text()
    assert service.config("smtp.host") == "mail.example.com"
    assert service.config("smtp.port") == "465"
    assert service.config("smtp.security") == "tls"
    assert service.config("smtp.username") == "helpdesk"
    assert service.config("smtp.from") == "support@example.com"
    assert service.config("smtp.from_name") == "Example Support"
    assert service.config("unseen_delay_s") == "90"


async def test_e9_password_goes_to_the_keyring_not_the_settings(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    dialog.smtp.host_edit.setText("127.0.0.1")
    dialog.smtp.username_edit.setText("helpdesk")
    dialog.smtp.password_edit.setText("s3cret-pw")
    assert await dialog.save()
    assert dialog.smtp.password_edit.text() == ""
    settings = await service.smtp_settings()
    assert settings is not None
    assert settings.password == "s3cret-pw"
    assert all("s3cret-pw" not in v for v in service.known_settings().values())


async def test_e9_no_keyring_shows_a_clear_error(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    dialog.smtp.username_edit.setText("helpdesk")
    dialog.smtp.password_edit.setText("s3cret-pw")
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not await dialog.save()
    finally:
        keyring.set_keyring(before)
    assert dialog.status_label.isVisible()
    assert "keyring" in dialog.status_label.text()
    assert "never writes passwords to a file" in dialog.status_label.text()


async def test_e9_plain_text_choice_shows_a_warning(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    assert not dialog.smtp.plain_warning.isVisible()
    dialog.smtp.security_combo.setCurrentIndex(dialog.smtp.security_combo.findData("none"))
    assert dialog.smtp.plain_warning.isVisible()
    assert "plain text" in dialog.smtp.plain_warning.text()


async def test_e9_send_test_email_reaches_the_server_and_shows_its_answer(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], smtp_server: SmtpServer
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    dialog.smtp.host_edit.setText(smtp_server.host)
    dialog.smtp.security_combo.setCurrentIndex(dialog.smtp.security_combo.findData("none"))
    dialog.smtp.port_spin.setValue(smtp_server.port)
    dialog.from_edit.setText("desk@example.com")
    dialog.test_to_edit.setText("ann@example.com")
    qtbot.mouseClick(dialog.smtp.test_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    assert len(smtp_server.handler.messages) == 1
    sent = smtp_server.handler.messages[0]
    assert sent["To"] == "ann@example.com"
    assert "Deskbell test email" in sent["Subject"]
    assert sent["Auto-Submitted"] == "auto-generated"
    assert dialog.smtp.test_result.isVisible()
    assert "250" in dialog.smtp.test_result.text()
    assert "OK queued as 1" in dialog.smtp.test_result.text()
    log = await service.emails()
    assert [(e.kind, e.status) for e in log] == [("test", "sent")]


async def test_e9_test_email_refused_shows_the_server_words(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], smtp_server: SmtpServer
) -> None:
    service, w, _ = world
    smtp_server.handler.data_reply = "554 5.7.1 Relay access denied"
    dialog = await make(qtbot, service, w.ann)
    dialog.smtp.host_edit.setText(smtp_server.host)
    dialog.smtp.security_combo.setCurrentIndex(dialog.smtp.security_combo.findData("none"))
    dialog.smtp.port_spin.setValue(smtp_server.port)
    assert await dialog.send_test_email() is None
    assert "Relay access denied" in dialog.smtp.test_result.text()
    assert dialog.smtp.test_button.isEnabled()
    log = await service.emails()
    assert [(e.kind, e.status) for e in log] == [("test", "failed")]


async def test_e9_test_email_with_nobody_listening(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], smtp_server: SmtpServer
) -> None:
    service, w, _ = world
    port = smtp_server.port
    smtp_server.stop()
    dialog = await make(qtbot, service, w.ann)
    dialog.smtp.host_edit.setText("127.0.0.1")
    dialog.smtp.security_combo.setCurrentIndex(dialog.smtp.security_combo.findData("none"))
    dialog.smtp.port_spin.setValue(port)
    assert await dialog.send_test_email() is None
    assert "refused" in dialog.smtp.test_result.text()


async def test_i1_dialog_saves_imap_settings(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    assert dialog.imap.port_spin.value() == 993
    assert dialog.imap_folder_edit.text() == "INBOX"
    assert dialog.create_items_check.isChecked()
    dialog.imap.host_edit.setText("imap.example.com")
    dialog.imap.security_combo.setCurrentIndex(dialog.imap.security_combo.findData("starttls"))
    assert dialog.imap.port_spin.value() == 143  # followed the STARTTLS mode's usual port
    assert not dialog.imap.plain_warning.isVisible()
    dialog.imap.username_edit.setText("helpdesk@example.com")
    dialog.imap.password_edit.setText("imap-s3cret")
    dialog.imap_folder_edit.setText("Support")
    dialog.create_items_check.setChecked(False)
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    assert not dialog.status_label.isVisible(), dialog.status_label.text()
    assert service.config("imap.host") == "imap.example.com"
    assert service.config("imap.port") == "143"
    assert service.config("imap.security") == "starttls"
    assert service.config("imap.username") == "helpdesk@example.com"
    assert service.config("imap.folder") == "Support"
    assert service.config("mail.create_items") == "false"
    assert dialog.imap.password_edit.text() == ""
    assert service.secrets.get(name="imap") == "imap-s3cret"
    assert all("imap-s3cret" not in v for v in service.known_settings().values())
    # Reopened, the dialog shows what was saved.
    again = await make(qtbot, service, w.ann)
    assert again.imap.security_combo.currentData() == "starttls"
    assert again.imap.port_spin.value() == 143
    assert not again.create_items_check.isChecked()


async def test_i1_imap_plain_text_choice_shows_a_warning(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    dialog.tabs.setCurrentIndex(1)
    assert not dialog.imap.plain_warning.isVisible()
    dialog.imap.security_combo.setCurrentIndex(dialog.imap.security_combo.findData("none"))
    assert dialog.imap.plain_warning.isVisible()
    assert "plain text" in dialog.imap.plain_warning.text()
    assert dialog.imap.port_spin.value() == 143


async def test_i1_imap_no_keyring_shows_a_clear_error(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann)
    dialog.imap.password_edit.setText("imap-s3cret")
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not await dialog.save()
    finally:
        keyring.set_keyring(before)
    assert "keyring" in dialog.status_label.text()
    assert "never writes passwords to a file" in dialog.status_label.text()


def _point_at(dialog: SettingsDialog, dovecot: DovecotServer, *, password: str) -> None:
    dialog.imap.host_edit.setText("127.0.0.1")
    dialog.imap.security_combo.setCurrentIndex(dialog.imap.security_combo.findData("tls"))
    dialog.imap.port_spin.setValue(dovecot.tls_port)
    dialog.imap.username_edit.setText(dovecot.user)
    dialog.imap.password_edit.setText(password)


async def test_i1_test_connection_shows_the_mailbox_answer(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], dovecot: DovecotServer
) -> None:
    service, w, _ = world
    assert dovecot.cafile is not None
    # The IMAP reader trusts the same extra CA file as SMTP (one local CA).
    await service.set_config("smtp.cafile", dovecot.cafile)
    dialog = await make(qtbot, service, w.ann)
    dialog.tabs.setCurrentIndex(1)
    _point_at(dialog, dovecot, password=dovecot.password)
    qtbot.mouseClick(dialog.imap.test_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    text = dialog.imap.test_result.text()
    assert dialog.imap.test_result.isVisible()
    assert f"Connected to 127.0.0.1:{dovecot.tls_port}" in text, text
    assert dovecot.user in text
    assert "INBOX" in text
    assert dialog.imap.test_button.isEnabled()
    assert service.config("imap.port") == str(dovecot.tls_port)  # tested what was saved


async def test_i1_test_connection_wrong_password_is_a_clear_error(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], dovecot: DovecotServer
) -> None:
    service, w, _ = world
    assert dovecot.cafile is not None
    await service.set_config("smtp.cafile", dovecot.cafile)
    dialog = await make(qtbot, service, w.ann)
    _point_at(dialog, dovecot, password="not-the-password")
    assert await dialog.test_imap() is None
    text = dialog.imap.test_result.text()
    assert "refused the login" in text, text
    assert dovecot.user in text
    assert dialog.imap.test_button.isEnabled()


async def test_i1_non_admin_cannot_change_the_mailbox(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.bob)
    assert not dialog.imap.host_edit.isEnabled()
    assert not dialog.imap.password_edit.isEnabled()
    assert not dialog.imap.test_button.isEnabled()


async def test_r5_n6_dialog_saves_my_notification_settings(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    clock = service.clock
    assert isinstance(clock, ManualClock)
    dialog = await make(qtbot, service, w.bob)
    assert dialog.person_row.isHidden()  # not an administrator
    dialog.tabs.setCurrentIndex(2)
    dialog.in_app_check.setChecked(False)
    dialog.sound_check.setChecked(False)
    dialog.delay_combo.setCurrentIndex(dialog.delay_combo.findData(900))
    dialog.dnd_combo.setCurrentIndex(dialog.dnd_combo.findData("1h"))
    dialog.weekly_check.setChecked(True)
    for index, check in enumerate(dialog.day_checks):
        check.setChecked(index in (5, 6))
    dialog.quiet_from.setTime(QTime(22, 0))
    dialog.quiet_to.setTime(QTime(7, 30))
    assert await dialog.save()
    bob = await service.person_by_id(w.bob)
    assert bob.settings.in_app is False
    assert bob.settings.sound is False
    assert bob.settings.email is True
    assert bob.settings.delay_s == 900
    assert bob.settings.dnd_until == clock.now() + timedelta(hours=1)
    assert bob.settings.dnd_weekly == ((5, 1320, 450), (6, 1320, 450))
    # Reopened, the dialog shows what was saved.
    again = await make(qtbot, service, w.bob)
    assert not again.in_app_check.isChecked()
    assert again.delay_combo.currentData() == 900
    assert again.dnd_combo.currentData() == "keep"
    assert again.weekly_check.isChecked()
    assert [c.isChecked() for c in again.day_checks] == [False] * 5 + [True, True]
    assert again.quiet_from.time() == QTime(22, 0)


async def test_r5_emails_off_and_dnd_until_tomorrow(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.bob)
    dialog.email_check.setChecked(False)
    assert not dialog.delay_combo.isEnabled()
    dialog.dnd_combo.setCurrentIndex(dialog.dnd_combo.findData("tomorrow"))
    assert await dialog.save()
    bob = await service.person_by_id(w.bob)
    assert bob.settings.email is False
    assert bob.settings.dnd_until is not None
    local = bob.settings.dnd_until.astimezone()
    now_local = service.clock.now().astimezone()
    assert local.date() == now_local.date() + timedelta(days=1)
    assert (local.hour, local.minute) == (8, 0)


async def test_m7_admin_edits_another_users_notifications(
    qtbot: QtBot, qapp: QApplication, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    # OK closes the dialog; as the only window, that would quit the app and stop the loop.
    qapp.setQuitOnLastWindowClosed(False)
    try:
        await _admin_edits_bob(qtbot, service, w)
    finally:
        qapp.setQuitOnLastWindowClosed(True)


async def _admin_edits_bob(qtbot: QtBot, service: Service, w: World) -> None:
    dialog = await make(qtbot, service, w.ann)
    assert not dialog.person_row.isHidden()
    names = [dialog.person_combo.itemText(i) for i in range(dialog.person_combo.count())]
    assert any("Bob Agent" in n for n in names)
    assert not any("Carl" in n for n in names)  # customers have no app settings
    dialog.person_combo.setCurrentIndex(dialog.person_combo.findData(w.bob))
    dialog.sound_check.setChecked(False)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    await dialog.wait_idle()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted
    assert (await service.person_by_id(w.bob)).settings.sound is False
    assert (await service.person_by_id(w.ann)).settings.sound is True


async def test_m7_non_admin_cannot_change_workspace_mail(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.bob)
    assert dialog.smtp.admin_note.isVisible()
    assert not dialog.smtp.host_edit.isEnabled()
    assert dialog.person_row.isHidden()


async def test_d1_start_at_login_checkbox(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    starter = FakeStarter()
    dialog = await make(qtbot, service, w.ann, login_starter=starter)
    assert dialog.autostart_check.isVisible()
    assert not dialog.autostart_check.isChecked()
    dialog.autostart_check.setChecked(True)
    assert await dialog.save()
    assert starter.enabled
    dialog.autostart_check.setChecked(False)
    assert await dialog.save()
    assert not starter.enabled


async def test_d6_settings_widgets_have_accessible_names(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.ann, login_starter=FakeStarter())
    for kind in (QLineEdit, QSpinBox, QComboBox, QCheckBox, QPushButton):
        for widget in dialog.findChildren(kind):
            if isinstance(widget.parent(), (QSpinBox, QComboBox)):
                continue  # Qt's inner editors
            assert widget.accessibleName() or widget.text(), widget


async def test_e1_never_email_me_survives_a_save(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = await make(qtbot, service, w.bob)
    dialog.delay_combo.setCurrentIndex(dialog.delay_combo.findData(None))
    assert dialog.delay_combo.currentText() == "Never"
    assert await dialog.save()
    assert (await service.person_by_id(w.bob)).settings.delay_s is None


async def test_updates_checkbox_is_off_by_default_and_saved_per_machine(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], tmp_path: Path
) -> None:
    """Issue 13: checking for updates is opt-in; the choice lands in this machine's ini."""
    service, w, _ = world
    prefs = UpdatePrefs(QSettings(str(tmp_path / "desktop.ini"), QSettings.Format.IniFormat))
    dialog = await make(qtbot, service, w.ann, updates=prefs)
    assert dialog.updates_check.isVisible()
    assert not dialog.updates_check.isChecked()
    dialog.updates_check.setChecked(True)
    assert await dialog.save()
    reread = UpdatePrefs(QSettings(str(tmp_path / "desktop.ini"), QSettings.Format.IniFormat))
    assert reread.enabled()
    dialog.updates_check.setChecked(False)
    assert await dialog.save()
    assert not prefs.enabled()
