"""The Messaging Center window against a real Service on SQLite, offscreen (M1-M6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from services.api import PersonInfo, Service
from services.clock import ManualClock
from tests.support.world import World
from ui.theme import apply_theme
from ui.windows.messaging_center import SECTIONS, MessagingCenter

SHOTS = os.environ.get("DESKBELL_SHOTS")  # a folder to save screenshots into, when set


async def _center(qtbot: QtBot, service: Service, me: PersonInfo) -> MessagingCenter:
    center = MessagingCenter(service, me)
    qtbot.addWidget(center)
    center.show()
    await center.wait_idle()
    return center


def _shot(center: MessagingCenter, name: str) -> None:
    """Save the window as the app shows it, in the light and the dark look."""
    if not SHOTS:
        return
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    palette, style = app.palette(), app.style().name()
    try:
        for look in ("light", "dark"):
            apply_theme(app, dark=look == "dark")
            QApplication.processEvents()
            center.grab().save(str(Path(SHOTS) / f"messaging-center-{name}-{look}.png"))
    finally:
        app.setStyle(style)
        app.setPalette(palette)


async def test_m1_only_administrators_open_it(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    bob = await service.person_by_id(w.bob)
    assert not bob.is_admin
    with pytest.raises(PermissionError):
        MessagingCenter(service, bob)


async def test_m1_automated_messages_critical_first_text_editable_not_switchable(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    page = center.messages_page
    assert [center.sidebar.item(i).text() for i in range(center.sidebar.count())] == list(SECTIONS)
    assert page.list.count() == 3
    assert page.list.item(0).text().startswith("★ New message")
    assert page.critical_note.isVisibleTo(center)
    assert not page.toggle_button.isEnabled()
    assert not page.delete_button.isEnabled()
    page.text_edit.setPlainText("Unseen in {{ conversation.subject }}")
    qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert (await service.automations.list())[0].text == "Unseen in {{ conversation.subject }}"
    page.text_edit.setPlainText("Oops {{ nope }}")
    qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert "unknown variable 'nope'" in page.status_label.text()
    _shot(center, "automated-messages")
    # The example can be switched off and on again from the window.
    page.list.setCurrentRow(1)
    assert page.toggle_button.isEnabled()
    qtbot.mouseClick(page.toggle_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert not (await service.automations.list())[1].enabled
    assert page.list.item(1).text().endswith("(off)")


async def test_m4_automated_emails_editor_previews_saves_and_refuses_with_the_line(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    center.show_section("Automated emails")
    await center.wait_idle()
    page = center.emails_page
    names = [page.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(page.list.count())]
    assert names == ["item_closed", "new_message"]
    assert "sent by: #3" in page.list.item(0).text()
    editor = page.editor
    assert editor.template is not None
    assert editor.template.name == "item_closed"
    assert "Printer on fire" in editor.preview_text.toPlainText()
    assert "Printer on fire" in editor.preview_html.toPlainText()
    editor.text_edit.setPlainText("Bye {{ recipient.name }}\n{{ item.title }")
    editor.pending()
    await center.wait_idle()
    assert "line 2" in editor.error_label.text()
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert editor.error_label.text().startswith("Not saved")
    assert "closed by" in (await service.templates.get("item_closed")).body_text
    editor.text_edit.setPlainText("Bye {{ recipient.name }}")
    editor.pending()
    await center.wait_idle()
    assert editor.preview_text.toPlainText() == "Bye Carl Customer"
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert (await service.templates.get("item_closed")).body_text == "Bye {{ recipient.name }}"
    editor.test_to_edit.setText("qa@example.com")
    qtbot.mouseClick(editor.test_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert [e.to_addrs for e in await service.emails()] == [("qa@example.com",)]
    _shot(center, "automated-emails")


async def test_m4_html_preview_is_escaped_and_sandboxed(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    center.show_section("Automated emails")
    await center.wait_idle()
    editor = center.emails_page.editor
    editor.html_edit.setPlainText("<p>{{ '<script>x</script>' }}</p>{{ ''.__class__ }}")
    editor.pending()
    await center.wait_idle()
    assert "not allowed" in editor.error_label.text()
    editor.html_edit.setPlainText("<p>{{ '<b>bold</b>' }}</p>")
    editor.pending()
    await center.wait_idle()
    assert "<b>bold</b>" in editor.preview_html.toPlainText()  # shown as text, not markup


async def test_m4_create_and_delete_a_template(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    center.show_section("Automated emails")
    await center.wait_idle()
    page = center.emails_page
    page.new_name_edit.setText("follow-up")
    qtbot.mouseClick(page.new_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert page.editor.template is not None
    assert page.editor.template.name == "follow-up"
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert "follow-up" not in {t.name for t in await service.templates.list()}
    page.list.setCurrentRow(0)
    await center.wait_idle()
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert "built-in" in page.status_label.text()


async def test_m5_system_emails_switches_reset_always_on(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    center.show_section("System emails")
    await center.wait_idle()
    page = center.system_page
    items = {
        page.list.item(i).data(Qt.ItemDataRole.UserRole): page.list.item(i)
        for i in range(page.list.count())
    }
    reset = items["password_reset"]
    assert reset.checkState() == Qt.CheckState.Checked
    assert not reset.flags() & Qt.ItemFlag.ItemIsUserCheckable
    items["welcome"].setCheckState(Qt.CheckState.Checked)
    await center.wait_idle()
    assert {s.name: s.enabled for s in await service.system_emails.list()}["welcome"]
    page.list.setCurrentRow(list(items).index("password_reset"))
    await center.wait_idle()
    editor = page.editor
    assert editor.template is not None
    assert editor.template.name == "password_reset"
    assert "482913" in editor.preview_text.toPlainText()
    editor.text_edit.setPlainText("Hello {{ person.name }}, no code here")
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert "must show the code" in editor.error_label.text()
    _shot(center, "system-emails")


async def test_m6_incoming_outgoing_filters_searches_and_shows_detail(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, clock = world
    await service.templates.save(name="p", subject="About {{ item.ref }}", body_text="Body!")
    for to in ("a@example.com", "b@example.com", "c@example.com"):
        await service.templates.test_send("p", to=to)
        clock.advance(1)
    await service.system_emails.reset_password("bob@example.com")
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    center.show_section("Incoming & Outgoing")
    await center.wait_idle()
    page = center.log_page
    model = page.model
    assert model.rowCount() == 4
    assert model.entry(0).to_addrs == ("bob@example.com",)  # newest first
    page.search_edit.setText("c@ex")
    await page.apply_filter()
    assert [model.entry(r).to_addrs[0] for r in range(model.rowCount())] == ["c@example.com"]
    page.search_edit.setText("")
    page.status_combo.setCurrentIndex(page.status_combo.findData("failed"))
    await center.wait_idle()
    assert model.rowCount() == 0
    assert page.empty_label.isVisibleTo(center)
    page.status_combo.setCurrentIndex(0)
    await center.wait_idle()
    page.table.selectRow(1)
    await center.wait_idle()
    detail = page.detail.toPlainText()
    assert "Subject: [test] About [#12]" in detail
    assert "Auto-Submitted: auto-generated" in detail
    assert "Body!" in detail
    _shot(center, "incoming-outgoing")


async def test_m6_log_model_loads_pages_lazily(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    from ui.windows.email_log import PAGE

    service, w, _clock = world
    await service.templates.save(name="p", subject="n", body_text="x")
    for i in range(PAGE + 5):
        await service.templates.test_send("p", to=f"u{i}@example.com")
    center = await _center(qtbot, service, await service.person_by_id(w.ann))
    center.show_section("Incoming & Outgoing")
    await center.wait_idle()
    model = center.log_page.model
    assert model.rowCount() == PAGE
    assert model.canFetchMore()
    model.fetchMore()
    await center.wait_idle()
    assert model.rowCount() == PAGE + 5
    assert not model.canFetchMore()
