"""The Messaging Center's Chat section as a form (C1): plain data in, signals out.

`ChatSettingsForm.show_settings(ChatSettings)` fills it; *Save* emits `save_requested` with the
values as typed (the service checks them and says what it refuses); *Copy* puts the widget
snippet on the clipboard. The snippet needs the server's public address, so without one the
form says where to set it instead of showing a tag that could not work.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.api import widget_snippet
from ui.widgets.center_style import caption, show_result

__all__ = ["UPLOADED_LOGO", "ChatSettings", "ChatSettingsForm"]

UPLOADED_LOGO = "An uploaded image (an https:// address or an image file replaces it)"
# The image types the chat serves as a logo, by file suffix; the service checks the bytes.
_LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_NO_LOGO_HINT = "https://example.com/logo.png, or drop or type an image file (optional)"

NO_PUBLIC_URL = (
    "The widget needs the server's public address: set it above, or start the server with "
    "deskbell serve --public-url https://desk.example.com"
)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The chat's workspace settings as the form shows and edits them."""

    enabled: bool
    title: str
    colour: str  # #rrggbb
    logo_url: str  # https://..., an uploaded image as a data: URL, or empty
    public_url: str  # the server's public root, or empty


class ChatSettingsForm(QWidget):
    """On/off, title, colour, logo and the public address; the widget snippet to copy."""

    save_requested = Signal(ChatSettings)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.enabled_check = QCheckBox("Customers can chat")
        self.enabled_check.setToolTip(
            "Off: the chat pages say the chat is closed, and emails carry no chat link"
        )
        self.title_edit = QLineEdit()
        self.title_edit.setAccessibleName("Chat page title")
        self.title_edit.setPlaceholderText("Messages")
        self.colour_edit = QLineEdit()
        self.colour_edit.setAccessibleName("Chat accent colour")
        self.colour_edit.setPlaceholderText("#1f5fbf")
        self.colour_edit.setMaxLength(7)
        self.colour_swatch = QFrame()
        self.colour_swatch.setFixedSize(22, 22)
        self.colour_swatch.setAccessibleName("Colour preview")
        self.colour_button = QPushButton("Choose…")
        self.colour_button.setAccessibleName("Choose the accent colour")
        self.logo_edit = QLineEdit()
        self.logo_edit.setAccessibleName("Logo address")
        self.logo_edit.setPlaceholderText(_NO_LOGO_HINT)
        self.no_logo_button = QPushButton("No logo")
        self.no_logo_button.setAccessibleName("Remove the logo")
        self._uploaded_logo = ""  # a data: URL the field stands for while it is empty
        self.public_url_edit = QLineEdit()
        self.public_url_edit.setAccessibleName("Server's public address")
        self.public_url_edit.setPlaceholderText("https://desk.example.com")
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("mcPrimary")
        self.save_button.setAccessibleName("Save chat settings")

        self.snippet = QPlainTextEdit()
        self.snippet.setReadOnly(True)
        self.snippet.setAccessibleName("Widget snippet")
        self.snippet.setFixedHeight(56)
        self.snippet_hint = QLabel()
        self.snippet_hint.setObjectName("mcHint")
        self.snippet_hint.setWordWrap(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setAccessibleName("Copy the widget snippet")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)

        colour_row = QHBoxLayout()
        colour_row.addWidget(self.colour_edit, 1)
        colour_row.addWidget(self.colour_swatch)
        colour_row.addWidget(self.colour_button)
        form = QFormLayout()
        form.addRow("", self.enabled_check)
        form.addRow("Page title", self.title_edit)
        form.addRow("Colour", colour_row)
        logo_row = QHBoxLayout()
        logo_row.addWidget(self.logo_edit, 1)
        logo_row.addWidget(self.no_logo_button)
        form.addRow("Logo", logo_row)
        form.addRow("Public address", self.public_url_edit)
        save_row = QHBoxLayout()
        save_row.addWidget(self.save_button)
        save_row.addStretch(1)
        form.addRow("", save_row)
        snippet_row = QHBoxLayout()
        snippet_row.addWidget(self.snippet, 1)
        snippet_row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addSpacing(12)
        layout.addWidget(caption("Widget for your website"))
        layout.addWidget(self.snippet_hint)
        layout.addLayout(snippet_row)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.colour_edit.textChanged.connect(self._on_colour_edit_text_changed)
        self.colour_button.clicked.connect(self._on_colour_button_clicked)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        # An image file dropped on the field (its file:// address) or typed as a path is
        # uploaded; no file dialog: the Linux bundle ships no ICU data, which it sorts with.
        self.logo_edit.editingFinished.connect(self._on_logo_edit_editing_finished)
        self.no_logo_button.clicked.connect(self._on_no_logo_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self._show_snippet("")

    def show_settings(self, settings: ChatSettings) -> None:
        self.enabled_check.setChecked(settings.enabled)
        self.title_edit.setText(settings.title)
        self.colour_edit.setText(settings.colour)
        self._show_logo(settings.logo_url)
        self.public_url_edit.setText(settings.public_url)
        self._show_snippet(settings.public_url)

    def typed(self) -> ChatSettings:
        return ChatSettings(
            enabled=self.enabled_check.isChecked(),
            title=self.title_edit.text(),
            colour=self.colour_edit.text(),
            logo_url=self.logo_edit.text() or self._uploaded_logo,
            public_url=self.public_url_edit.text(),
        )

    def use_logo_file(self, path: Path) -> None:
        """Take an image file as the logo (stored when saved, as a data: URL)."""
        media = _LOGO_TYPES.get(path.suffix.lower())
        if media is None:
            show_result(
                self.status_label, "A logo must be a PNG, JPEG, GIF or WebP image.", error=True
            )
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            show_result(self.status_label, f"Could not read {path.name}: {exc}", error=True)
            return
        encoded = base64.b64encode(data).decode("ascii")
        self._show_logo(f"data:{media};base64,{encoded}")
        show_result(self.status_label, f"{path.name} will be the logo once saved.", error=False)

    def _show_logo(self, logo_url: str) -> None:
        uploaded = logo_url.startswith("data:")
        self._uploaded_logo = logo_url if uploaded else ""
        self.logo_edit.setText("" if uploaded else logo_url)
        self.logo_edit.setPlaceholderText(UPLOADED_LOGO if uploaded else _NO_LOGO_HINT)

    def _on_logo_edit_editing_finished(self) -> None:
        path = logo_file(self.logo_edit.text())
        if path is not None:
            self.use_logo_file(path)

    def _on_no_logo_button_clicked(self) -> None:
        self._show_logo("")

    def _show_snippet(self, public_url: str) -> None:
        snippet = widget_snippet(public_url)
        self.snippet.setPlainText(snippet)
        self.copy_button.setEnabled(bool(snippet))
        self.snippet_hint.setText(
            "Put this tag on your website: it adds a “Chat with us” button."
            if snippet
            else NO_PUBLIC_URL
        )

    def _on_colour_edit_text_changed(self, text: str) -> None:
        colour = QColor(text)
        valid = len(text) == 7 and text.startswith("#") and colour.isValid()
        self.colour_swatch.setStyleSheet(
            f"background: {colour.name()}; border: 1px solid palette(mid);"
            if valid
            else "background: transparent; border: 1px dashed palette(mid);"
        )

    def _on_colour_button_clicked(self) -> None:
        chosen = QColorDialog.getColor(QColor(self.colour_edit.text()), self, "Chat colour")
        if chosen.isValid():
            self.colour_edit.setText(chosen.name())

    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.snippet.toPlainText())
        show_result(self.status_label, "Snippet copied.", error=False)

    def _on_save_button_clicked(self) -> None:
        self.save_requested.emit(self.typed())


def logo_file(text: str) -> Path | None:
    """The local file `text` names (a path, or the file:// address a dropped file gives), or
    None for an https address, nothing, or a file that is not there."""
    text = text.strip()
    if text.startswith("file://"):
        text = QUrl(text).toLocalFile()
    elif not Path(text).is_absolute():
        return None
    path = Path(text)
    return path if path.is_file() else None
