"""Chat (C1): the customer chat's workspace settings, for an administrator.

Reads the `chat.*` keys and the server's public address from the service's settings and writes
back only what changed, one key at a time, so a value the service refuses (a colour that is not
`#rrggbb`, a logo that is not `https://`) is named in one red line and the others still save.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from PySide6.QtWidgets import QVBoxLayout, QWidget

from services.api import CenterFacade, DeskbellError
from ui.tasks import Tasks
from ui.widgets.center_style import show_result
from ui.widgets.chat_settings import ChatSettings, ChatSettingsForm

__all__ = ["CHAT_KEYS", "ChatPage", "chat_settings"]

# The workspace keys behind each field (docs/chat.md).
CHAT_KEYS: Final = {
    "enabled": "chat.enabled",
    "title": "chat.title",
    "colour": "chat.colour",
    "logo_url": "chat.logo_url",
    "public_url": "server.public_url",
}
_LABELS: Final = {
    "enabled": "Chat on/off",
    "title": "Page title",
    "colour": "Colour",
    "logo_url": "Logo",
    "public_url": "Public address",
}


def chat_settings(values: Mapping[str, str]) -> ChatSettings:
    """The form's data from the service's settings (stored values or their defaults)."""
    return ChatSettings(
        enabled=values[CHAT_KEYS["enabled"]].strip().lower() == "true",
        title=values[CHAT_KEYS["title"]],
        colour=values[CHAT_KEYS["colour"]],
        logo_url=values[CHAT_KEYS["logo_url"]],
        public_url=values[CHAT_KEYS["public_url"]],
    )


def _stored(field: str, settings: ChatSettings) -> str:
    value = getattr(settings, field)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


class ChatPage(QWidget):
    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self.shown: ChatSettings | None = None
        self.form = ChatSettingsForm()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form)
        self.form.save_requested.connect(self._on_form_save_requested)

    async def load(self) -> None:
        try:
            values = await self._service.settings()
        except DeskbellError as exc:
            show_result(self.form.status_label, str(exc), error=True)
            return
        self.shown = chat_settings(values)
        self.form.show_settings(self.shown)

    def _on_form_save_requested(self, typed: ChatSettings) -> None:
        self._tasks.start(self.save(typed), name="save-chat-settings")

    async def save(self, typed: ChatSettings) -> None:
        """Store each changed field; say what was refused, keep what was typed there."""
        before = self.shown
        refused: list[str] = []
        saved = 0
        for field, key in CHAT_KEYS.items():
            value = _stored(field, typed)
            if before is not None and value == _stored(field, before):
                continue
            try:
                await self._service.set_config(key, value)
            except DeskbellError as exc:
                refused.append(f"{_LABELS[field]}: {exc}")
            else:
                saved += 1
        await self.load()
        if refused:
            # Put back what was typed in the refused fields, so it can be corrected.
            self.form.show_settings(typed)
            show_result(self.form.status_label, " ".join(refused), error=True)
        else:
            show_result(
                self.form.status_label, "Saved." if saved else "Nothing changed.", error=False
            )
