"""The desktop's side of the customer chat as plain widgets, offscreen: the Chat section's form
(C1: on/off, title, colour, logo, the widget snippet to copy) and the conversation header's
"in the chat now" line (C2)."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from services.api import ConversationInfo, ConversationKind, PersonInfo, PersonKind
from ui.tasks import Tasks
from ui.theme import LIGHT
from ui.widgets.chat_settings import NO_PUBLIC_URL, ChatSettings, ChatSettingsForm
from ui.widgets.conversation_pane import ConversationPane

SETTINGS = ChatSettings(
    enabled=True,
    title="Acme help",
    colour="#aa3300",
    logo_url="https://acme.example/logo.png",
    public_url="https://desk.acme.example/",
)


def test_c1_the_form_shows_the_settings_and_the_snippet_to_copy(qtbot: QtBot) -> None:
    form = ChatSettingsForm()
    qtbot.addWidget(form)
    form.show_settings(SETTINGS)
    assert form.enabled_check.isChecked()
    assert form.title_edit.text() == "Acme help"
    assert form.snippet.toPlainText() == (
        '<script src="https://desk.acme.example/chat/widget.js" async></script>'
    )
    assert "#aa3300" in form.colour_swatch.styleSheet()
    qtbot.mouseClick(form.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == form.snippet.toPlainText()
    assert form.status_label.text() == "Snippet copied."


def test_c1_without_a_public_address_the_form_says_where_to_set_it(qtbot: QtBot) -> None:
    form = ChatSettingsForm()
    qtbot.addWidget(form)
    form.show_settings(ChatSettings(True, "Messages", "#1f5fbf", "", ""))
    assert form.snippet.toPlainText() == ""
    assert not form.copy_button.isEnabled()
    assert form.snippet_hint.text() == NO_PUBLIC_URL


def test_c1_save_emits_what_was_typed(qtbot: QtBot) -> None:
    form = ChatSettingsForm()
    qtbot.addWidget(form)
    form.show_settings(SETTINGS)
    form.enabled_check.setChecked(False)
    form.title_edit.setText("Support")
    form.colour_edit.setText("#zzzzzz")
    assert "dashed" in form.colour_swatch.styleSheet()  # not a colour: no swatch
    with qtbot.waitSignal(form.save_requested) as saved:
        qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    assert saved.args == [
        ChatSettings(False, "Support", "#zzzzzz", SETTINGS.logo_url, SETTINGS.public_url)
    ]


def test_c2_the_header_says_whether_the_customer_is_in_the_chat(qtbot: QtBot) -> None:
    me = PersonInfo(id=1, email="ann@example.com", name="Ann Agent", kind=PersonKind.USER)
    carl = PersonInfo(id=3, email="carl@customer.org", name="Carl", kind=PersonKind.CUSTOMER)
    pane = ConversationPane(
        theme=LIGHT, me=me, now=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC), tasks=Tasks()
    )
    qtbot.addWidget(pane)
    pane.show()
    pane.show_conversation(
        ConversationInfo(
            id=7, kind=ConversationKind.EXTERNAL, item_number=1, title="Printer", members=(me, carl)
        )
    )
    assert not pane.header_presence.isVisible()  # nothing known yet
    pane.show_customer_presence("Carl", in_chat=True)
    assert pane.header_presence.isVisible()
    assert pane.header_presence.accessibleName() == "Carl is in the chat now"
    pane.show_customer_presence("Carl", in_chat=False)
    assert pane.header_presence.text() == "Carl is not in the chat"
    pane.show_customer_presence(None, in_chat=False)
    assert not pane.header_presence.isVisible()
