"""Ctrl+K (D5): type a number or words of a title, Enter opens that conversation.

The rows already loaded answer at once; a short pause after typing asks the service
(`Service.find_conversations`), so conversations far down the lists are found too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.api import ConversationKind, ConversationRow
from ui.format import row_label
from ui.tasks import Tasks

__all__ = ["SEARCH_PAUSE_MS", "QuickSwitch", "Search", "matches"]

Search = Callable[[str], Awaitable[list[ConversationRow]]]
SEARCH_PAUSE_MS = 150  # one query per pause in typing, not one per key
MAX_RESULTS = 100
_MOVE_KEYS = frozenset({Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown})


def matches(row: ConversationRow, query: str) -> bool:
    """'12' or '#12' finds item 12 (and titles with 12); words must all appear in the title."""
    q = query.strip().lower().lstrip("#")
    if not q:
        return True
    if q.isdigit() and row.item_number is not None and str(row.item_number).startswith(q):
        return True
    title = row.title.lower()
    return all(word in title for word in q.split())


def _exact_first(rows: list[ConversationRow], query: str) -> list[ConversationRow]:
    q = query.strip().lstrip("#")
    if not q.isdigit():
        return rows
    number = int(q)
    return sorted(rows, key=lambda r: r.item_number != number)  # stable: keeps recency


class QuickSwitch(QDialog):
    chosen = Signal(int)
    searched = Signal(str)  # the service answered for this text (tests, and nothing else)

    def __init__(
        self,
        rows: Sequence[ConversationRow],
        parent: QWidget | None = None,
        *,
        search: Search | None = None,
        tasks: Tasks | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Go to conversation")
        self.setAccessibleName("Go to conversation")
        self._rows = list(rows)
        self._search = search
        self._tasks = tasks if tasks is not None else Tasks()
        self._shown: list[ConversationRow] = []
        self._pending: asyncio.Task[Any] | None = None
        self.query = QLineEdit(self)
        self.query.setPlaceholderText("Item number or words of a title…")
        self.query.setAccessibleName("Conversation number or title")
        self.query.setClearButtonEnabled(True)
        self.results = QListWidget(self)
        self.results.setAccessibleName("Matching conversations")
        self.results.setUniformItemSizes(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.query)
        layout.addWidget(self.results)
        self.resize(480, 380)
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(SEARCH_PAUSE_MS)
        self._pause.timeout.connect(self._on_pause_timeout)
        self.query.textChanged.connect(self._on_query_text_changed)
        self.query.returnPressed.connect(self._on_query_return_pressed)
        # The arrows move through the results while the typing stays in the search box.
        self.query.installEventFilter(self)
        self.results.itemActivated.connect(self._on_results_item_activated)
        self._on_query_text_changed("")

    def _show(self, rows: list[ConversationRow]) -> None:
        keep = self.results.currentRow()
        self._shown = rows[:MAX_RESULTS]
        self.results.clear()
        for row in self._shown:
            where = "External" if row.kind == ConversationKind.EXTERNAL else "Internal"
            unseen = f"  ·  {row.unseen} new" if row.unseen else ""
            item = QListWidgetItem(f"{row_label(row)}  ·  {where}{unseen}")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            item.setToolTip(f"{row.last_author}: {row.last_text[:120]}")
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(min(max(keep, 0), self.results.count() - 1))

    def _on_query_text_changed(self, text: str) -> None:
        self.results.setCurrentRow(-1)
        self._show(_exact_first([r for r in self._rows if matches(r, text)], text))
        if self._search is not None and text.strip():
            self._pause.start()

    def _on_pause_timeout(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._tasks.start(
            self.search_now(self.query.text()), name="quick-switch-search"
        )

    async def search_now(self, text: str) -> None:
        """Add what the service finds for `text` to the loaded rows that match."""
        if self._search is None:
            return
        found = await self._search(text)
        if text != self.query.text():
            return  # typed on meanwhile: a newer search follows
        known = {r.id for r in self._shown}
        self._show(_exact_first(self._shown + [r for r in found if r.id not in known], text))
        self.searched.emit(text)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.query
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in _MOVE_KEYS
        ):
            QApplication.sendEvent(self.results, event)
            return True
        return super().eventFilter(watched, event)

    def _on_query_return_pressed(self) -> None:
        item = self.results.currentItem()
        if item is not None:
            self._on_results_item_activated(item)

    def _on_results_item_activated(self, item: QListWidgetItem) -> None:
        self.chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))
        self.accept()

    def done(self, result: int) -> None:
        self._pause.stop()
        if self._pending is not None:
            self._pending.cancel()  # only ours: the tasks may be the window's
        super().done(result)
