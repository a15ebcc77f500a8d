"""Bounced addresses (E7, M6): the addresses whose emails came back, for an administrator.

Each row says how often an address bounced hard (the mailbox does not exist) and soft (full,
unreachable for a while), what its mail system said last, and whether Deskbell stopped emailing
it. *Clear* forgets an address's bounces, so emails go to it again — after someone fixed a typo
in it, or its mailbox came back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.api import BounceInfo, CenterFacade, DeskbellError
from ui.format import format_time
from ui.tasks import Tasks
from ui.widgets.center_style import show_result

__all__ = ["COLUMNS", "BouncedAddressesPage"]

COLUMNS = ("Address", "Emails", "Hard", "Soft", "Last bounce", "What the mail system said")
_ADDRESS_ROLE = Qt.ItemDataRole.UserRole


def state_text(b: BounceInfo) -> str:
    """The Emails column: whether Deskbell still emails the address."""
    return "Stopped" if b.blocked_at is not None else "Still sent"


class BouncedAddressesPage(QWidget):
    """The table of bounced addresses and a Clear button for the selected one."""

    def __init__(
        self, service: CenterFacade, tasks: Tasks, *, acting: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self._acting = acting
        self.bounces: list[BounceInfo] = []

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Bounced addresses")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(34)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)

        self.empty_label = QLabel("No address has bounced.")
        self.empty_label.setObjectName("mcEmpty")
        self.empty_label.setVisible(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("mcPrimary")
        self.clear_button.setAccessibleName("Clear the selected address's bounces")
        self.clear_button.setToolTip("Forget this address's bounces, so emails go to it again")
        self.clear_button.setEnabled(False)
        hint = QLabel(
            "Clear an address once it works again (a typo fixed, a mailbox back): "
            "Deskbell then emails it as before."
        )
        hint.setObjectName("mcHint")
        hint.setWordWrap(True)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addWidget(hint, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)

        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.clear_button.clicked.connect(lambda: self._tasks.start(self.clear_selected()))

    @property
    def selected(self) -> BounceInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.bounces[rows[0].row()] if rows else None

    async def load(self) -> None:
        self.bounces = await self._service.bounced_addresses()
        now = self._service.clock.now()
        self.table.setRowCount(len(self.bounces))
        for row, b in enumerate(self.bounces):
            cells = (
                b.address,
                state_text(b),
                str(b.hard_bounces),
                str(b.soft_bounces),
                format_time(b.last_at, now=now),
                b.last_reason or b.last_status,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if column == 1 and b.blocked_at is not None:
                    font = item.font()
                    font.setBold(True)  # what needs the administrator, in either look
                    item.setFont(font)
                self.table.setItem(row, column, item)
        self.empty_label.setVisible(not self.bounces)
        self.table.setVisible(bool(self.bounces))
        self._on_table_selection_changed()

    def _on_table_selection_changed(self) -> None:
        self.clear_button.setEnabled(self.selected is not None)

    async def clear_selected(self) -> None:
        b = self.selected
        if b is None:
            return
        try:
            await self._service.clear_bounces(address=b.address, acting=self._acting)
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
        else:
            show_result(self.status_label, f"{b.address} gets emails again.", error=False)
        await self.load()
