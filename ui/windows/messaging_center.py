"""The Messaging Center (M1-M6): the administrator's window, five sections in a sidebar.

- *Automated messages*: the automations, the critical new-message one first; its text is
  editable, it cannot be switched off or deleted (the service refuses too).
- *Automated emails*: the email templates and what sends each; the editor with its preview.
- *System emails*: welcome, password reset (always on), new customer; switches and templates.
- *Incoming & Outgoing*: the 72-hour log (`ui.windows.email_log`).
- *Bounced addresses*: what came back, and Clear (`ui.windows.bounced_addresses`).
- *Users*: add a user, see and end a user's sessions (`ui.windows.users_page`).
- *Chat*: the customer chat on or off, its title, colour and logo, the widget snippet
  (`ui.windows.chat_page`).

Open it from the main window for an administrator: `MessagingCenter(service, me, parent)`,
then `show()`; it loads itself. Every refusal from the service shows as one line in red.

In a team (T5) `service` is the server (`services.api.RemoteService`), and `connection` the
team sync's state: while the server is out of reach the window says so above the sections and
disables them (nothing is written anywhere else), and loads the shown section again once the
server is back.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from services.api import (
    LOCAL_OPERATOR,
    AutomationInfo,
    CenterFacade,
    ConnectionState,
    DeskbellError,
    PersonInfo,
    TemplateInfo,
)
from ui.tasks import Tasks
from ui.widgets.center_style import caption, show_result, style_sheet, theme_for
from ui.windows.bounced_addresses import BouncedAddressesPage
from ui.windows.chat_page import ChatPage
from ui.windows.email_log import EmailLogPage
from ui.windows.template_editor import TemplateEditor
from ui.windows.users_page import UsersPage

if TYPE_CHECKING:
    from services.api import TeamSync

__all__ = [
    "SECTIONS",
    "AutomatedEmailsPage",
    "AutomatedMessagesPage",
    "MessagingCenter",
    "SystemEmailsPage",
]

SECTIONS = (
    "Automated messages",
    "Automated emails",
    "System emails",
    "Incoming & Outgoing",
    "Bounced addresses",
    "Users",
    "Chat",
)
# One line under each section's title: what it is for.
_DESCRIPTIONS = (
    "Messages Deskbell posts by itself. The critical one can be reworded, never switched off.",
    "The emails sent when something happens to an item, and the automations that send them.",
    "Welcome, password reset and new-customer emails: switch them on or off and edit them.",
    "Every email sent and received in the last 72 hours, with the server's answer.",
    "Addresses whose emails came back. After repeated hard bounces Deskbell stops emailing an "
    "address until you clear it.",
    "Agents and administrators: add one, and see or end the devices each is signed in on.",
    "The page where customers follow their conversations live, and the widget that starts one "
    "from your website.",
)
_ID_ROLE = Qt.ItemDataRole.UserRole
_TEXT_VARIABLES = (
    "Variables: item.ref, item.title, item.status, actor.name, event.new_status, "
    "message.author, workspace.name"
)
_CRITICAL_VARIABLES = (
    "Variables: item.ref, item.title, recipient.name, conversation.subject, conversation.kind"
)


class AutomatedMessagesPage(QWidget):
    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self.automations: list[AutomationInfo] = []
        self.list = QListWidget()
        self.list.setObjectName("mcList")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setAccessibleName("Automations")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.critical_note = QLabel(
            "This automation is critical: its text can change; it cannot be switched off"
            " or deleted."
        )
        self.critical_note.setWordWrap(True)
        self.critical_note.setObjectName("mcHint")
        self.text_edit = QPlainTextEdit()
        self.text_edit.setAccessibleName("Automation text")
        self.save_button = QPushButton("Save text")
        self.save_button.setObjectName("mcPrimary")
        self.toggle_button = QPushButton("Switch off")
        self.delete_button = QPushButton("Delete")
        for button in (self.save_button, self.toggle_button, self.delete_button):
            button.setAccessibleName(button.text())
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(12, 0, 0, 0)
        right_layout.setSpacing(8)
        right_layout.addWidget(self.summary)
        right_layout.addWidget(self.critical_note)
        right_layout.addWidget(caption("Text"))
        right_layout.addWidget(self.text_edit, 1)
        self.variables = QLabel()
        self.variables.setObjectName("mcHint")
        self.variables.setWordWrap(True)
        right_layout.addWidget(self.variables)
        right_layout.addWidget(caption("As it reads, with sample data"))
        # The words people will see, not the template (M1).
        self.preview = QLabel()
        self.preview.setObjectName("mcPreviewSubject")
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(Qt.TextFormat.PlainText)
        self.preview.setAccessibleDescription("Preview of the automation's text")
        right_layout.addWidget(self.preview)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.toggle_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        right_layout.addLayout(buttons)
        right_layout.addWidget(self.status_label)
        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([300, 500])
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)

        self.list.currentRowChanged.connect(self._on_list_row_changed)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.refresh_preview)
        self.text_edit.textChanged.connect(self._preview_timer.start)
        self.save_button.clicked.connect(lambda: self._tasks.start(self.save_text()))
        self.toggle_button.clicked.connect(lambda: self._tasks.start(self.toggle()))
        self.delete_button.clicked.connect(lambda: self._tasks.start(self.delete()))

    @property
    def current(self) -> AutomationInfo | None:
        row = self.list.currentRow()
        return self.automations[row] if 0 <= row < len(self.automations) else None

    async def load(self, *, select_id: int | None = None) -> None:
        keep = select_id if select_id is not None else (self.current.id if self.current else None)
        self.automations = await self._service.automations.list()
        self.list.blockSignals(True)
        self.list.clear()
        for a in self.automations:
            state = "" if a.enabled else "  (off)"
            item = QListWidgetItem(("★ " if a.critical else "") + a.name + state)
            item.setData(_ID_ROLE, a.id)
            item.setToolTip(a.summary)
            self.list.addItem(item)
        self.list.blockSignals(False)
        ids = [a.id for a in self.automations]
        self.list.setCurrentRow(ids.index(keep) if keep in ids else 0)
        self._on_list_row_changed(self.list.currentRow())

    def _on_list_row_changed(self, _row: int) -> None:
        a = self.current
        if a is None:
            return
        self.summary.setText(f"<b>{html.escape(a.name)}</b><br>{html.escape(a.summary)}")
        self.critical_note.setVisible(a.critical)
        self.text_edit.setPlainText(a.text)
        self.toggle_button.setText("Switch off" if a.enabled else "Switch on")
        self.toggle_button.setAccessibleName(self.toggle_button.text())
        # The service refuses these for the critical automation; the buttons say so first.
        self.toggle_button.setEnabled(not a.critical)
        self.delete_button.setEnabled(not a.critical)
        self.status_label.clear()
        self.variables.setText(_CRITICAL_VARIABLES if a.critical else _TEXT_VARIABLES)
        self.refresh_preview()

    def refresh_preview(self) -> None:
        self._preview_timer.stop()
        a = self.current
        try:
            self.preview.setText(
                self._service.automations.preview_text(
                    self.text_edit.toPlainText(), critical=a is not None and a.critical
                )
            )
        except DeskbellError as exc:
            self.preview.setText(f"Cannot be shown: {exc}")

    async def _run(self, what: str, coro: Awaitable[object]) -> bool:
        try:
            await coro
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
            return False
        show_result(self.status_label, what, error=False)
        return True

    async def save_text(self) -> None:
        a = self.current
        if a is not None and await self._run(
            "Saved.", self._service.automations.set_text(a.id, self.text_edit.toPlainText())
        ):
            await self.load(select_id=a.id)
            show_result(self.status_label, "Saved.", error=False)

    async def toggle(self) -> None:
        a = self.current
        if a is not None and await self._run(
            "Done.", self._service.automations.set_enabled(a.id, enabled=not a.enabled)
        ):
            await self.load(select_id=a.id)

    async def delete(self) -> None:
        a = self.current
        if a is not None and await self._run("Deleted.", self._service.automations.delete(a.id)):
            await self.load()


class _TemplatesPage(QWidget):
    """A list of templates of some kinds, and the editor beside it."""

    kinds: tuple[str, ...] = ()

    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self.templates: list[TemplateInfo] = []
        self.list = QListWidget()
        self.list.setObjectName("mcList")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.editor = TemplateEditor(service, tasks)
        self.side = QWidget()
        side_layout = QVBoxLayout(self.side)
        side_layout.setContentsMargins(0, 0, 12, 0)
        side_layout.setSpacing(8)
        side_layout.addWidget(self.list, 1)
        split = QSplitter()
        split.addWidget(self.side)
        split.addWidget(self.editor)
        split.setSizes([260, 740])
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)
        self.list.currentRowChanged.connect(self._on_list_row_changed)
        self.editor.saved.connect(lambda _t: self._tasks.start(self.load()))

    def _label(self, t: TemplateInfo) -> str:
        return t.name

    async def load(self, *, select: str | None = None) -> None:
        keep = select or (self.editor.template.name if self.editor.template else None)
        self.templates = [t for t in await self._service.templates.list() if t.kind in self.kinds]
        self.list.blockSignals(True)
        self.list.clear()
        for t in self.templates:
            item = QListWidgetItem(self._label(t))
            item.setData(_ID_ROLE, t.name)
            item.setToolTip(t.description)
            self.list.addItem(item)
        self.list.blockSignals(False)
        names = [t.name for t in self.templates]
        if names:
            row = names.index(keep) if keep in names else 0
            self.list.setCurrentRow(row)
            await self.editor.open(names[row])

    def _on_list_row_changed(self, row: int) -> None:
        if 0 <= row < len(self.templates):
            self._tasks.start(self.editor.open(self.templates[row].name), name="open-template")


class AutomatedEmailsPage(_TemplatesPage):
    kinds = ("notification", "automation")

    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(service, tasks, parent)
        self.list.setAccessibleName("Email templates")
        self.new_name_edit = QLineEdit()
        self.new_name_edit.setPlaceholderText("new-template-name")
        self.new_name_edit.setAccessibleName("New template name")
        self.new_button = QPushButton("New template")
        self.new_button.setAccessibleName("New template")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setAccessibleName("Delete template")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        layout = self.side.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.addWidget(self.new_name_edit)
        row = QHBoxLayout()
        row.addWidget(self.new_button)
        row.addWidget(self.delete_button)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        self.new_button.clicked.connect(lambda: self._tasks.start(self.create_template()))
        self.delete_button.clicked.connect(lambda: self._tasks.start(self.delete()))

    def _label(self, t: TemplateInfo) -> str:
        sent_by = ", ".join(t.used_by) if t.used_by else "not used"
        return f"{t.name}\n    sent by: {sent_by}"

    async def create_template(self) -> None:
        name = self.new_name_edit.text().strip()
        try:
            await self._service.templates.save(
                name=name,
                subject="{{ item.ref }} {{ item.title }}",
                body_text="Hello {{ recipient.name }},\n\n{{ item.ref }} {{ item.title }}\n",
                kind="automation",
            )
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
            return
        self.new_name_edit.clear()
        show_result(self.status_label, f"Created {name}.", error=False)
        await self.load(select=name.lower())

    async def delete(self) -> None:
        t = self.editor.template
        if t is None:
            return
        try:
            await self._service.templates.delete(t.name)
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
            return
        show_result(self.status_label, f"Deleted {t.name}.", error=False)
        self.editor.template = None
        await self.load()


class SystemEmailsPage(_TemplatesPage):
    kinds = ("system",)

    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(service, tasks, parent)
        self.list.setAccessibleName("System emails")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        layout = self.side.layout()
        assert isinstance(layout, QVBoxLayout)
        hint = QLabel("Tick to send; the password reset is always on.")
        hint.setObjectName("mcHint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addWidget(self.status_label)
        self.list.itemChanged.connect(self._on_list_item_changed)

    async def load(self, *, select: str | None = None) -> None:
        await super().load(select=select)
        switches = {s.name: s for s in await self._service.system_emails.list()}
        self.list.blockSignals(True)
        for row in range(self.list.count()):
            item = self.list.item(row)
            info = switches.get(str(item.data(_ID_ROLE)))
            if info is None:
                continue
            flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
            if info.always_on:
                flags &= ~Qt.ItemFlag.ItemIsUserCheckable
                item.setText(f"{info.name} (always on)")
            item.setFlags(flags)
            item.setCheckState(Qt.CheckState.Checked if info.enabled else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)

    def _on_list_item_changed(self, item: QListWidgetItem) -> None:
        enabled = item.checkState() == Qt.CheckState.Checked
        self._tasks.start(self.switch(str(item.data(_ID_ROLE)), enabled=enabled))

    async def switch(self, name: str, *, enabled: bool) -> None:
        try:
            await self._service.system_emails.set_enabled(name, enabled=enabled)
        except DeskbellError as exc:
            show_result(self.status_label, str(exc), error=True)
        else:
            show_result(self.status_label, f"{name} is {'on' if enabled else 'off'}.", error=False)
        await self.load(select=name)


class MessagingCenter(QDialog):
    """The administrator's Messaging Center; refuses to open for anyone else."""

    def __init__(
        self,
        service: CenterFacade,
        me: PersonInfo,
        parent: QWidget | None = None,
        *,
        connection: TeamSync | None = None,
    ) -> None:
        super().__init__(parent)
        if not me.is_admin:
            raise PermissionError("the Messaging Center is for administrators")
        self.setWindowTitle("Messaging Center")
        self.setAccessibleName("Messaging Center")
        self.resize(1240, 760)
        self._service = service
        self.me = me
        self.tasks = Tasks()
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("mcSidebar")
        self.sidebar.setAccessibleName("Messaging Center sections")
        self.sidebar.addItems(list(SECTIONS))
        for row in range(self.sidebar.count()):
            self.sidebar.item(row).setSizeHint(QSize(0, 40))
        side_title = QLabel("Messaging Center")
        side_title.setObjectName("mcSidebarTitle")
        side_title.setAccessibleName("Messaging Center")
        side_subtitle = QLabel("Administrator")
        side_subtitle.setObjectName("mcSidebarSubtitle")
        side_pane = QFrame()
        side_pane.setObjectName("mcSidebarPane")
        side_pane.setFixedWidth(232)
        side_layout = QVBoxLayout(side_pane)
        side_layout.setContentsMargins(12, 18, 12, 12)
        side_layout.setSpacing(2)
        side_layout.addWidget(side_title)
        side_layout.addWidget(side_subtitle)
        side_layout.addSpacing(14)
        side_layout.addWidget(self.sidebar, 1)
        self.section_title = QLabel(SECTIONS[0])
        self.section_title.setObjectName("mcSectionTitle")
        self.section_description = QLabel(_DESCRIPTIONS[0])
        self.section_description.setObjectName("mcSectionDescription")
        self.section_description.setWordWrap(True)
        # In a team: why the sections are disabled (the server is out of reach).
        self.server_banner = QLabel()
        self.server_banner.setWordWrap(True)
        self.server_banner.hide()
        self.messages_page = AutomatedMessagesPage(service, self.tasks)
        self.emails_page = AutomatedEmailsPage(service, self.tasks)
        self.system_page = SystemEmailsPage(service, self.tasks)
        self.log_page = EmailLogPage(service, self.tasks)
        self.bounces_page = BouncedAddressesPage(service, self.tasks, acting=me.email)
        # Solo, the desktop holds its database and acts as the machine's operator; in a team
        # the server takes who acts from the token (services.remote).
        self.users_page = UsersPage(service, self.tasks, acting=LOCAL_OPERATOR)
        self.chat_page = ChatPage(service, self.tasks)
        self.stack = QStackedWidget()
        for page in (
            self.messages_page,
            self.emails_page,
            self.system_page,
            self.log_page,
            self.bounces_page,
            self.users_page,
            self.chat_page,
        ):
            self.stack.addWidget(page)
        content = QVBoxLayout()
        content.setContentsMargins(20, 16, 16, 14)
        content.setSpacing(2)
        content.addWidget(self.section_title)
        content.addWidget(self.section_description)
        content.addSpacing(12)
        content.addWidget(self.server_banner)
        content.addWidget(self.stack, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(side_pane)
        layout.addLayout(content, 1)
        self._dark: bool | None = None
        self._restyle()
        self._loaded: set[int] = set()
        self._online = connection is None or connection.state is ConnectionState.ONLINE
        self._unsubscribe = (
            connection.subscribe_state(self._on_connection_state_changed)
            if connection is not None
            else None
        )
        if connection is not None:
            self._show_connection(connection.state)
        self.sidebar.currentRowChanged.connect(self._on_sidebar_row_changed)
        self.sidebar.setCurrentRow(0)

    def _on_connection_state_changed(self, state: ConnectionState) -> None:
        was_online = self._online
        self._show_connection(state)
        if self._online and not was_online:
            # Back: what the sections showed may be stale, and a failed load is retried.
            self._loaded.clear()
            self._on_sidebar_row_changed(self.sidebar.currentRow())

    def _show_connection(self, state: ConnectionState) -> None:
        self._online = state is ConnectionState.ONLINE
        self.stack.setEnabled(self._online)
        if self._online:
            self.server_banner.hide()
            return
        why = (
            "your session there has ended: sign in again"
            if state is ConnectionState.SIGNED_OUT
            else "it cannot be reached now"
        )
        show_result(
            self.server_banner,
            f"The Messaging Center works on your team's server, and {why}. "
            "Nothing here can be changed until it is back.",
            error=True,
        )
        self.server_banner.show()

    def show_section(self, name: str) -> None:
        self.sidebar.setCurrentRow(SECTIONS.index(name))

    def _restyle(self) -> None:
        theme = theme_for(palette=QGuiApplication.palette())
        if theme.dark is self._dark:
            return  # setting the same sheet again would only repolish every child
        self._dark = theme.dark
        self.setStyleSheet(style_sheet(theme))

    def changeEvent(self, event: QEvent) -> None:
        # Light and dark follow the application's palette, also when it changes while open.
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self._restyle()
        super().changeEvent(event)

    def _on_sidebar_row_changed(self, row: int) -> None:
        if not 0 <= row < len(SECTIONS):
            return
        self.section_title.setText(SECTIONS[row])
        self.section_description.setText(_DESCRIPTIONS[row])
        self.stack.setCurrentIndex(row)
        if row not in self._loaded:
            # Each section loads the first time it is shown, so the window opens at once.
            self._loaded.add(row)
            self.tasks.start(self._load_section(row), name=f"load-{SECTIONS[row]}")

    async def _load_section(self, row: int) -> None:
        try:
            await self._load_page(row)
            if self._online:
                self.server_banner.hide()
        except DeskbellError as exc:  # the server out of reach (team): said, tried again later
            self._loaded.discard(row)
            if self._online:
                show_result(
                    self.server_banner, f"{SECTIONS[row]} could not be loaded: {exc}", error=True
                )
                self.server_banner.show()

    async def _load_page(self, row: int) -> None:
        if row == 0:
            await self.messages_page.load()
        elif row == 1:
            await self.emails_page.load()
        elif row == 2:
            await self.system_page.load()
        elif row == 3:
            await self.log_page.apply_filter()
        elif row == 4:
            await self.bounces_page.load()
        elif row == 5:
            await self.users_page.load()
        else:
            await self.chat_page.load()

    async def wait_idle(self) -> None:
        """Let every running load, preview and save finish (tests)."""
        await self.tasks.drain()

    def done(self, result: int) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.tasks.cancel()
        super().done(result)
