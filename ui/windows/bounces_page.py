"""The Messaging Center's "Bounced addresses" section (E7): every address a delivery report
spoke of, blocked ones first (no email goes to those), and Clear, which forgets an address's
bounces so that it is emailed again. Administrators only, as the whole Messaging Center."""

from __future__ import annotations

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

from services.api import BounceInfo, PersonInfo, Service
from services.errors import DeskbellError
from ui.format import format_time
from ui.tasks import Tasks
from ui.widgets.center_style import show_result

__all__ = ["COLUMNS", "BouncesPage"]

COLUMNS = ("Address", "State", "Bounces", "Last reason", "Last report")


def _state(bounce: BounceInfo) -> str:
    return "Blocked" if bounce.blocked_at is not None else "Watched"


class BouncesPage(QWidget):
    """The list and its Clear button; `load()` reads the service."""

    def __init__(
        self, service: Service, tasks: Tasks, me: PersonInfo, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self._me = me
        self._bounces: list[BounceInfo] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Bounced addresses")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.empty_label = QLabel("No email has bounced.")
        self.empty_label.setObjectName("mcEmpty")
        self.empty_label.setVisible(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setAccessibleName("Clear the chosen address's bounces")
        self.clear_button.setToolTip("Forget this address's bounces, so that it is emailed again")
        self.clear_button.setEnabled(False)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.result_label, 1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(buttons)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.clear_button.clicked.connect(self._on_clear_clicked)

    @property
    def chosen(self) -> BounceInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self._bounces[rows[0].row()] if rows else None

    async def load(self) -> None:
        self._bounces = await self._service.bounced_addresses()
        self.table.setRowCount(len(self._bounces))
        for row, b in enumerate(self._bounces):
            cells = (
                b.address,
                _state(b),
                f"{b.hard_bounces} hard, {b.soft_bounces} soft",
                b.last_reason,
                format_time(b.last_at, now=self._service.clock.now()),
            )
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.empty_label.setVisible(not self._bounces)
        self._on_selection_changed()

    async def clear(self, address: str) -> None:
        try:
            await self._service.clear_bounces(address=address, acting=self._me.email)
        except DeskbellError as exc:
            show_result(self.result_label, str(exc), error=True)
            return
        show_result(self.result_label, f"{address} will be emailed again.", error=False)
        await self.load()

    def _on_selection_changed(self) -> None:
        self.clear_button.setEnabled(self.chosen is not None)

    def _on_clear_clicked(self) -> None:
        chosen = self.chosen
        if chosen is not None:
            self._tasks.start(self.clear(chosen.address), name="clear-bounces")
