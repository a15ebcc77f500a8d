"""The composer: a text box, a clear Internal/External indicator, and Ctrl+Enter to send (D5)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from services.api import ConversationKind
from ui.theme import Theme

__all__ = ["Composer"]


class Composer(QWidget):
    """Emits `send_requested(text)`; the window posts it and clears the box on success."""

    send_requested = Signal(str)

    def __init__(self, *, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.kind: ConversationKind | None = None
        self.indicator = QLabel(self)
        self.indicator.setAccessibleDescription("Who reads what you write")
        self.indicator.setTextFormat(Qt.TextFormat.PlainText)
        self.editor = QPlainTextEdit(self)
        self.editor.setAccessibleName("Message")
        self.editor.setTabChangesFocus(True)
        self.editor.setFixedHeight(84)
        self.send_button = QPushButton("Send", self)

        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self.hint = QLabel("Ctrl+Enter to send", self)
        self.hint.setEnabled(False)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.indicator)
        top.addStretch(1)
        top.addWidget(self.hint)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.editor, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 12)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addLayout(row)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self.editor)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self._on_send_button_clicked)
        self.set_kind(None)

    def set_kind(self, kind: ConversationKind | None) -> None:
        """Say, in words and colour, who will read what is typed (R2)."""
        self.kind = kind
        t = self.theme
        if kind is None:
            text, colour, on_colour = "No conversation open", t.muted, t.on_accent
            button, placeholder = "Send", ""
        elif kind == ConversationKind.EXTERNAL:
            text, colour, on_colour = (
                "● External — the customer sees this",
                t.external,
                t.on_external,
            )
            button, placeholder = "Send to customer", "Reply to the customer…"
        else:
            text, colour, on_colour = "● Internal — team only", t.internal, t.on_internal
            button, placeholder = "Send to team", "Write to your team…"
        self.indicator.setText(text)
        # Screen readers hear the words, not the bullet drawn before them.
        self.indicator.setAccessibleName(text.removeprefix("● "))
        self.indicator.setStyleSheet(f"color: {colour.name()}; font-weight: 600;")
        self.send_button.setText(button)
        self.send_button.setAccessibleName(button)
        self.send_button.setStyleSheet(
            f"QPushButton {{ background: {colour.name()}; color: {on_colour.name()}; border: none;"
            " border-radius: 6px; padding: 8px 14px; font-weight: 600; }"
            f" QPushButton:disabled {{ background: {t.separator.name()};"
            f" color: {t.muted.name()}; }}"
        )
        self.editor.setPlaceholderText(placeholder)
        self.editor.setEnabled(kind is not None)
        self.send_button.setEnabled(kind is not None)

    def text(self) -> str:
        return self.editor.toPlainText()

    def clear(self) -> None:
        self.editor.clear()

    def _on_send_button_clicked(self) -> None:
        text = self.editor.toPlainText().strip()
        if text and self.kind is not None:
            self.send_requested.emit(text)
