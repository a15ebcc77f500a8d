"""Ctrl+K (D5): type a number or words of a title, Enter opens that conversation."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from services.api import ConversationKind, ConversationRow
from ui.conversation_list import row_label

__all__ = ["QuickSwitch", "matches"]


def matches(row: ConversationRow, query: str) -> bool:
    """'12' or '#12' finds item 12 (and titles with 12); words must all appear in the title."""
    q = query.strip().lower().lstrip("#")
    if not q:
        return True
    if q.isdigit() and row.item_number is not None and str(row.item_number).startswith(q):
        return True
    title = row.title.lower()
    return all(word in title for word in q.split())


class QuickSwitch(QDialog):
    chosen = Signal(int)

    def __init__(self, rows: Sequence[ConversationRow], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Go to conversation")
        self.setAccessibleName("Go to conversation")
        self._rows = list(rows)
        self.query = QLineEdit(self)
        self.query.setPlaceholderText("Number or title…")
        self.query.setAccessibleName("Conversation number or title")
        self.results = QListWidget(self)
        self.results.setAccessibleName("Matching conversations")
        layout = QVBoxLayout(self)
        layout.addWidget(self.query)
        layout.addWidget(self.results)
        self.resize(440, 360)
        self.query.textChanged.connect(self._on_query_text_changed)
        self.query.returnPressed.connect(self._on_query_return_pressed)
        self.results.itemActivated.connect(self._on_results_item_activated)
        self._on_query_text_changed("")

    def _on_query_text_changed(self, text: str) -> None:
        self.results.clear()
        for row in [r for r in self._rows if matches(r, text)][:100]:
            where = "External" if row.kind == ConversationKind.EXTERNAL else "Internal"
            item = QListWidgetItem(f"{row_label(row)}  ·  {where}")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(0)

    def _on_query_return_pressed(self) -> None:
        item = self.results.currentItem()
        if item is not None:
            self._on_results_item_activated(item)

    def _on_results_item_activated(self, item: QListWidgetItem) -> None:
        self.chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))
        self.accept()
