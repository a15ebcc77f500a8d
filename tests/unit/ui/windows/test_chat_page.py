"""The Messaging Center's Chat section against a real Service on SQLite, offscreen (C1): it
shows the chat's workspace settings and the widget snippet, saves what changed, and names what
the service refuses without losing what was typed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from services.api import Service
from services.clock import ManualClock
from tests.support.world import World
from ui.widgets.chat_settings import NO_PUBLIC_URL, UPLOADED_LOGO, logo_file
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


# The smallest valid PNG: a 1x1 transparent pixel.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


async def test_c1_a_logo_file_is_uploaded_kept_and_removed(
    qtbot: QtBot, world: tuple[Service, World, ManualClock], tmp_path: Path
) -> None:
    """The logo may be an image file, stored with the settings (the chat serves it): the form
    says an image is in use rather than showing its bytes, keeps it when other fields are
    saved, and No logo removes it."""
    service, w, _ = world
    center = await _chat(qtbot, service, w)
    form = center.chat_page.form
    logo = tmp_path / "logo.png"
    logo.write_bytes(_PNG)
    # Dropped on the field (a file:// address) or typed as a path: no file dialog.
    form.logo_edit.setText(QUrl.fromLocalFile(str(logo)).toString())
    form.logo_edit.editingFinished.emit()
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    stored = (await service.settings())["chat.logo_url"]
    assert stored.startswith("data:image/png;base64,")
    assert form.logo_edit.text() == ""
    assert form.logo_edit.placeholderText() == UPLOADED_LOGO

    form.title_edit.setText("Acme help")
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert (await service.settings())["chat.logo_url"] == stored  # kept

    qtbot.mouseClick(form.no_logo_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    await center.wait_idle()
    assert (await service.settings())["chat.logo_url"] == ""

    (tmp_path / "notes.txt").write_text("not an image")
    form.use_logo_file(tmp_path / "notes.txt")
    assert "PNG, JPEG, GIF or WebP" in form.status_label.text()


def test_c1_the_logo_field_takes_a_file_path_a_file_address_or_a_web_address(
    tmp_path: Path,
) -> None:
    """A path or file:// address of an existing file is uploaded; an https address, nothing,
    a relative name or a missing file is not."""
    logo = tmp_path / "logo.png"
    logo.write_bytes(_PNG)
    assert logo_file(str(logo)) == logo
    assert logo_file(QUrl.fromLocalFile(str(logo)).toString()) == logo
    assert logo_file("https://example.com/logo.png") is None
    assert logo_file("") is None
    assert logo_file("logo.png") is None
    assert logo_file(str(tmp_path / "gone.png")) is None
