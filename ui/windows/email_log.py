"""Incoming & Outgoing (M6): the 72-hour email log as a lazy table, a status filter, a search box
and a detail pane with the headers, the body and the server's reply.

The model holds one page at a time more than the view has scrolled to: `fetchMore` asks the
service for the next `PAGE` rows (a LIMIT query on an index), so 100,000 entries open as fast
as 200 do. A new filter drops the rows and loads the first page again; a generation counter
makes a late answer for an old filter harmless.
"""

from __future__ import annotations

import asyncio
from datetime import UTC

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.api import CenterFacade, EmailDetail, EmailLogEntry
from ui.format import format_time
from ui.tasks import Tasks
from ui.widgets.center_style import StatusPillDelegate, theme_for

__all__ = ["COLUMNS", "PAGE", "STATUSES", "EmailLogModel", "EmailLogPage"]

PAGE = 200
COLUMNS = ("", "Time", "From", "To", "Subject", "Status", "Details")
STATUSES = (
    "queued",
    "sending",
    "sent",
    "retrying",
    "failed",
    "bounced",
    "suppressed",
    "received",
    "ignored",
)
_Index = QModelIndex | QPersistentModelIndex
_FIT_COLUMNS = (1, 2, 3, 5)  # time, from, to, status: as wide as what they hold


def details(e: EmailLogEntry) -> str:
    """What the Details column says: why, what the server said, or what incoming mail did."""
    if e.status == "retrying" and e.next_attempt_at is not None:
        local = e.next_attempt_at.astimezone()
        return f"next attempt {local:%H:%M:%S}" + (f"; {e.reply}" if e.reply else "")
    if e.direction == "in":
        return e.action or e.reason or ""
    return e.reason or e.reply or ""


class EmailLogModel(QAbstractTableModel):
    """The log's rows, fetched a page at a time from `Service.emails`."""

    loaded = Signal()  # a page arrived (tests and the benchmark wait on it)

    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self._rows: list[EmailLogEntry] = []
        self._status: str | None = None
        self._direction: str | None = None
        self._search: str | None = None
        self._more = True
        self._fetching = False
        self._generation = 0

    # --- filtering -------------------------------------------------------------------------

    def set_filter(
        self, *, status: str | None = None, direction: str | None = None, search: str | None = None
    ) -> asyncio.Task[None]:
        """Show only matching rows; returns the task loading the first page."""
        self._status, self._direction = status or None, direction or None
        self._search = (search or "").strip() or None
        return self.reload()

    def reload(self) -> asyncio.Task[None]:
        self._generation += 1
        self.beginResetModel()
        self._rows = []
        self._more = True
        self._fetching = False
        self.endResetModel()
        return self._start_fetch()

    def entry(self, row: int) -> EmailLogEntry:
        return self._rows[row]

    # --- lazy loading ----------------------------------------------------------------------

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008 (Qt's own default)
        return not parent.isValid() and self._more and not self._fetching

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent):
            self._start_fetch()

    def _start_fetch(self) -> asyncio.Task[None]:
        self._fetching = True
        return self._tasks.start(self._fetch(self._generation), name="email-log-page")

    async def _fetch(self, generation: int) -> None:
        try:
            rows = await self._service.emails(
                status=self._status,
                direction=self._direction,
                search=self._search,
                limit=PAGE,
                offset=len(self._rows),
            )
        finally:
            if generation == self._generation:
                self._fetching = False
        if generation != self._generation:
            return  # a newer filter has replaced this one
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        self._more = len(rows) == PAGE
        self.loaded.emit()

    # --- the table -------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        e = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return "→" if e.direction == "out" else "←"
            if column == 1:
                return format_time(e.created_at, now=self._service.clock.now())
            if column == 2:
                return e.from_addr
            if column == 3:
                return ", ".join(e.to_addrs)
            if column == 4:
                return e.subject
            if column == 5:
                return e.status
            return details(e)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 0:
                return "outgoing" if e.direction == "out" else "incoming"
            if column == 1:
                return f"{e.created_at.astimezone():%Y-%m-%d %H:%M:%S}"
            # The whole text, whatever the column's width.
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 0:
            return Qt.AlignmentFlag.AlignCenter
        if role == Qt.ItemDataRole.FontRole and column == 0:
            font = QFont()
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.25)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and column == 0:
            # Outgoing in the accent, incoming in the "received" blue-green of the theme.
            theme = theme_for()
            return (
                theme.accent
                if e.direction == "out"
                else QColor("#34d399" if theme.dark else "#047857")
            )
        if role == Qt.ItemDataRole.ForegroundRole and column in (1, 6):
            return theme_for().muted
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{e.direction} {e.status} {e.subject}"
        return None


def format_detail(detail: EmailDetail) -> str:
    e = detail.entry
    lines = [f"{name}: {value}" for name, value in detail.headers]
    if not lines:
        lines = [f"From: {e.from_addr}", f"To: {', '.join(e.to_addrs)}", f"Subject: {e.subject}"]
    lines.append("")
    lines.append(f"Status: {e.status} (attempts: {e.attempts})")
    if e.sent_at is not None:
        lines.append(f"Sent: {e.sent_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    if e.reply:
        lines.append(f"Server's reply: {e.reply}")
    if e.reason:
        lines.append(f"Reason: {e.reason}")
    if e.action:
        lines.append(f"What it did: {e.action}")
    lines.extend(["", detail.body])
    return "\n".join(lines)


class EmailLogPage(QWidget):
    """The Incoming & Outgoing section: filter bar, the table, and the detail pane."""

    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self.model = EmailLogModel(service, tasks, self)

        self.status_combo = QComboBox()
        self.status_combo.setAccessibleName("Status filter")
        self.status_combo.addItem("All statuses", "")
        for status in STATUSES:
            self.status_combo.addItem(status.capitalize(), status)
        self.direction_combo = QComboBox()
        self.direction_combo.setAccessibleName("Direction filter")
        for label, value in (("In and out", ""), ("Outgoing", "out"), ("Incoming", "in")):
            self.direction_combo.addItem(label, value)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search subject or address")
        self.search_edit.setAccessibleName("Search the email log")
        self.search_edit.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)  # typing does not query on every key
        self._search_timer.timeout.connect(self.apply_filter)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(self.status_combo)
        bar.addWidget(self.direction_combo)
        bar.addWidget(self.search_edit, 1)

        self.table = QTableView()
        self.table.setAccessibleName("Emails of the last 72 hours")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(34)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setItemDelegateForColumn(5, StatusPillDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        # Addresses, times and statuses get the width of their text as pages arrive (up to a
        # limit, then the tooltip has it all); the subject takes what is left; details keep a
        # fair share.
        header.setMaximumSectionSize(480)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        for column, width in enumerate((36, 90, 150, 150, 230, 100, 210)):
            self.table.setColumnWidth(column, width)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.detail.setAccessibleName("Email details")
        # Headers line up in a fixed-width font, as in a mail client's "show original".
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.detail.setPlaceholderText("Select an email to see its headers, body and reply.")
        self.empty_label = QLabel("No emails in the last 72 hours match.")
        self.empty_label.setObjectName("mcEmpty")
        self.empty_label.setVisible(False)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setSizes([400, 200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addLayout(bar)
        layout.addWidget(self.empty_label)
        layout.addWidget(split, 1)

        self.status_combo.currentIndexChanged.connect(self.apply_filter)
        self.direction_combo.currentIndexChanged.connect(self.apply_filter)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row_changed)
        self.model.loaded.connect(self._on_model_loaded)

    def apply_filter(self) -> asyncio.Task[None]:
        self._search_timer.stop()
        self.detail.clear()
        return self.model.set_filter(
            status=self.status_combo.currentData(),
            direction=self.direction_combo.currentData(),
            search=self.search_edit.text(),
        )

    def _on_model_loaded(self) -> None:
        self.empty_label.setVisible(self.model.rowCount() == 0)
        for column in _FIT_COLUMNS:
            self.table.resizeColumnToContents(column)
        # The status is painted as a pill, wider than its text.
        self.table.setColumnWidth(5, self.table.columnWidth(5) + 28)

    def _on_table_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            entry = self.model.entry(current.row())
            self._tasks.start(self.show_detail(entry.id), name="email-detail")

    async def show_detail(self, email_id: int) -> None:
        detail = await self._service.email_detail(email_id)
        self.detail.setPlainText(format_detail(detail))
