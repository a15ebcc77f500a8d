"""Users (T4, M8): the workspace's agents and administrators, for an administrator.

The list shows every user and their role. *Add user* makes an agent (or an administrator);
the welcome email, when it is on, invites them to set a password. Selecting a user shows the
devices they are signed in on, and *End session* signs one out at once.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.api import Caller, CenterFacade, DeskbellError, PersonInfo, PersonKind, SessionInfo
from ui.format import format_time
from ui.tasks import Tasks
from ui.widgets.center_style import caption, show_result

__all__ = ["SESSION_COLUMNS", "UsersPage"]

SESSION_COLUMNS = ("Device", "Address", "Signed in", "Last used")
_EMAIL_ROLE = Qt.ItemDataRole.UserRole


class UsersPage(QWidget):
    """Users on the left with the form that adds one; the selected user's sessions on the right."""

    def __init__(
        self, service: CenterFacade, tasks: Tasks, *, acting: Caller, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self._acting = acting
        self.users: list[PersonInfo] = []
        self.sessions: list[SessionInfo] = []

        self.list = QListWidget()
        self.list.setObjectName("mcList")
        self.list.setAccessibleName("Users")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.email_edit = QLineEdit()
        self.email_edit.setAccessibleName("New user's email address")
        self.email_edit.setPlaceholderText("name@example.com")
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("New user's name")
        self.admin_check = QCheckBox("Administrator")
        self.admin_check.setToolTip("Administrators open the Messaging Center and manage users")
        self.add_button = QPushButton("Add user")
        self.add_button.setObjectName("mcPrimary")
        form = QFormLayout()
        form.addRow("Email", self.email_edit)
        form.addRow("Name", self.name_edit)
        form.addRow("", self.admin_check)
        form.addRow("", self.add_button)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        left.addWidget(caption("Add a user"))
        left.addLayout(form)

        self.table = QTableWidget(0, len(SESSION_COLUMNS))
        self.table.setAccessibleName("Signed-in devices")
        self.table.setHorizontalHeaderLabels(list(SESSION_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.empty_label = QLabel("Not signed in on any device.")
        self.empty_label.setObjectName("mcEmpty")
        self.end_button = QPushButton("End session")
        self.end_button.setAccessibleName("End the selected session")
        self.end_button.setToolTip("Sign this device out now; it must sign in again")
        self.end_button.setEnabled(False)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        right = QVBoxLayout()
        right.addWidget(caption("Signed-in devices"))
        right.addWidget(self.empty_label)
        right.addWidget(self.table, 1)
        right.addWidget(self.end_button, 0, Qt.AlignmentFlag.AlignLeft)
        right.addWidget(self.status_label)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(16)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

        self.list.currentRowChanged.connect(self._on_list_row_changed)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.add_button.clicked.connect(lambda: self._tasks.start(self.add_user()))
        self.end_button.clicked.connect(lambda: self._tasks.start(self.end_selected()))

    @property
    def selected_user(self) -> PersonInfo | None:
        row = self.list.currentRow()
        return self.users[row] if 0 <= row < len(self.users) else None

    @property
    def selected_session(self) -> SessionInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.sessions[rows[0].row()] if rows else None

    async def load(self, *, select: str | None = None) -> None:
        keep = select or (self.selected_user.email if self.selected_user else None)
        self.users = await self._service.people(kind=PersonKind.USER)
        self.list.blockSignals(True)
        self.list.clear()
        for person in self.users:
            role = "administrator" if person.is_admin else "agent"
            item = QListWidgetItem(f"{person.name} <{person.email}> · {role}")
            item.setData(_EMAIL_ROLE, person.email)
            self.list.addItem(item)
        emails = [p.email for p in self.users]
        self.list.setCurrentRow(emails.index(keep) if keep in emails else 0 if emails else -1)
        self.list.blockSignals(False)
        await self.load_sessions()

    def _on_list_row_changed(self, _row: int) -> None:
        self._tasks.start(self.load_sessions())

    async def load_sessions(self) -> None:
        person = self.selected_user
        self.sessions = (
            await self._service.sessions(acting=self._acting, email=person.email)
            if person is not None
            else []
        )
        now = self._service.clock.now()
        self.table.setRowCount(len(self.sessions))
        for row, s in enumerate(self.sessions):
            cells = (
                s.device,
                s.address,
                format_time(s.created_at, now=now),
                format_time(s.last_used_at, now=now),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.empty_label.setVisible(not self.sessions)
        self.table.setVisible(bool(self.sessions))
        self._on_table_selection_changed()

    def _on_table_selection_changed(self) -> None:
        self.end_button.setEnabled(self.selected_session is not None)

    async def add_user(self) -> None:
        try:
            new = await self._service.add_user(
                acting=self._acting,
                email=self.email_edit.text(),
                name=self.name_edit.text(),
                admin=self.admin_check.isChecked(),
            )
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
            return
        then = (
            "The welcome email invites them to set a password."
            if new.invited
            else "The welcome email is off: switch it on in System emails, or set their "
            "password from the command line."
        )
        show_result(self.status_label, f"{new.person.email} added. {then}", error=False)
        self.email_edit.clear()
        self.name_edit.clear()
        self.admin_check.setChecked(False)
        await self.load(select=new.person.email)

    async def end_selected(self) -> None:
        s = self.selected_session
        if s is None:
            return
        try:
            await self._service.end_session(acting=self._acting, session_id=s.id)
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
        else:
            show_result(self.status_label, f"{s.device} is signed out.", error=False)
        await self.load_sessions()
