"""The Messaging Center's Chat section against a real Service on SQLite, offscreen (C1): it
shows the chat's workspace settings and the widget snippet, saves what changed, and names what
the service refuses without losing what was typed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from services.api import Service
from services.clock import ManualClock
from tests.support.world import World
from ui.widgets.chat_settings import NO_PUBLIC_URL
from ui.windows.messaging_center import SECTIONS, MessagingCenter


async def _chat(qtbot: QtBot, service: Service, w: World) -> MessagingCenter:
    center = MessagingCenter(service, await service.person_by_id(w.ann))
    qtbot.addWidget(center)
    center.show()
    center.show_section("Chat")
    await center.wait_idle()
    return center


async def test_c1_the_chat_section_shows_the_settings_and_the_snippet(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    assert "Chat" in SECTIONS
    center = await _chat(qtbot, service, w)
    form = center.chat_page.form
    assert form.enabled_check.isChecked()  # the defaults
    assert form.title_edit.text() == "Messages"
    assert form.colour_edit.text() == "#1f5fbf"
    assert form.snippet_hint.text() == NO_PUBLIC_URL
    assert not form.copy_button.isEnabled()

    await service.set_config("server.public_url", "https://desk.example.com")
    await center.chat_page.load()
    assert form.snippet.toPlainText() == (
        '<script src="https://desk.example.com/chat/widget.js" async></script>'
    )
    qtbot.mouseClick(form.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == form.snippet.toPlainText()


async def test_c1_saving_stores_the_changed_keys_and_names_what_is_refused(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _chat(qtbot, service, w)
    form = center.chat_page.form
    form.enabled_check.setChecked(False)
    form.title_edit.setText("Acme help")
    form.colour_edit.setText("#AA3300")
    form.logo_edit.setText("http://acme.example/logo.png")  # not https: refused
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    settings = await service.settings()
    assert settings["chat.enabled"] == "false"
    assert settings["chat.title"] == "Acme help"
    assert settings["chat.colour"] == "#aa3300"
    assert settings["chat.logo_url"] == ""
    assert form.status_label.text().startswith("Logo: ")
    assert form.logo_edit.text() == "http://acme.example/logo.png"  # kept to correct
    assert form.title_edit.text() == "Acme help"

    form.logo_edit.setText("https://acme.example/logo.png")
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert (await service.settings())["chat.logo_url"] == "https://acme.example/logo.png"
    assert form.status_label.text() == "Saved."
    assert form.colour_edit.text() == "#aa3300"  # as stored
