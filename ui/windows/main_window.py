"""The main window (N2, N3, N7, D5, D6): the sidebar with both inboxes, the conversation pane,
and the wiring between them, the service and its bridge.

The window reads and writes only through `services.api.Service` and learns about changes only
from the `ServiceBridge`: its own writes come back through the same feed as anyone else's. What
a new message sets off is `ui.policies.alerts`' decision, carried out by `ui.windows.alerts`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QSplitter, QVBoxLayout

from services.api import (
    CenterFacade,
    Clock,
    ConnectionState,
    ConversationInfo,
    ConversationKind,
    ConversationRow,
    DeskbellError,
    Inbox,
    MessageRow,
    NotFoundError,
    PersonInfo,
    PersonKind,
    Service,
    TeamAccount,
    UnseenCounts,
)
from ui.bridge import ServiceBridge
from ui.format import row_label, window_title
from ui.platform.idle import IdleProbe
from ui.platform.notify import BannerNotifier, NotificationCenter, Notifier
from ui.platform.sound import Pinger
from ui.policies.dnd import dnd_state
from ui.tasks import Tasks
from ui.theme import Theme
from ui.widgets.connection_indicator import ConnectionIndicator
from ui.widgets.conversation_list import ConversationListModel, PageFetcher
from ui.widgets.conversation_pane import ConversationPane
from ui.widgets.sidebar import EXTERNAL_TAB, INTERNAL_TAB, Sidebar
from ui.windows.alerts import Alerts
from ui.windows.seen_tracker import SeenTracker
from ui.windows.window_place import WindowPlace

if TYPE_CHECKING:
    from services.api import TeamSync  # loads the network client: only in team mode

    # The dialogs are imported when first opened: start-up shows the window without them.
    from ui.widgets.quick_switch import QuickSwitch
    from ui.windows.messaging_center import MessagingCenter
    from ui.windows.settings_dialog import LoginStarter, SettingsDialog
    from ui.windows.update_check import UpdatePrefs

__all__ = ["APP_TITLE", "EXTERNAL_TAB", "INTERNAL_TAB", "MainWindow"]

log = logging.getLogger(__name__)

APP_TITLE = "Deskbell"


class MainWindow(QMainWindow):
    """Emits `quit_requested` for the menu's Quit; closing the window never ends the app (D1)."""

    quit_requested = Signal()
    shown_with_data = Signal()
    dnd_changed = Signal(str)  # N6: "Do not disturb until 14:30" or "", for the tray
    sign_out_requested = Signal()  # T4: Settings' "Sign out" (team mode)

    def __init__(
        self,
        *,
        service: Service,
        bridge: ServiceBridge,
        theme: Theme,
        tasks: Tasks,
        now: Callable[[], datetime],
        clock: Clock,
        pinger: Pinger | None = None,
        idle_probe: IdleProbe | None = None,
        system_notifiers: list[Callable[[], Notifier]] | None = None,
        keep_in_tray: Callable[[], bool] = lambda: False,
        login_starter: LoginStarter | None = None,
        update_prefs: UpdatePrefs | None = None,
        place: WindowPlace | None = None,
        spell_out_emoji: bool = False,
        team_account: TeamAccount | None = None,
        connection: TeamSync | None = None,
        center: CenterFacade | None = None,
    ) -> None:
        super().__init__()
        self.team_account = team_account  # None: this computer only
        self.connection = connection
        self.service = service
        # T5: where the Messaging Center, new items and chat presence go: the team's server in
        # a team (the replica holds none of it), else this workspace's own service.
        self.center: CenterFacade = center if center is not None else service
        self._open_when_arrives: int | None = None  # a new item's conversation, from the server
        self.bridge = bridge
        self.theme = theme
        self.tasks = tasks
        self._now = now
        self._keep_in_tray = keep_in_tray
        self._login_starter = login_starter
        self.update_prefs = update_prefs  # the Settings' "check for updates" (None: not offered)
        self.settings_dialog: SettingsDialog | None = None
        self.messaging_center: MessagingCenter | None = None
        self.counts = UnseenCounts()
        self.current: ConversationInfo | None = None
        self._opening = 0  # bumped by every open_conversation; the latest one wins
        self.setWindowTitle(APP_TITLE)
        self.setAccessibleName("Deskbell")
        self._place = place

        self.models = {
            INTERNAL_TAB: ConversationListModel(fetch_page=self._page(Inbox.INTERNAL), tasks=tasks),
            EXTERNAL_TAB: ConversationListModel(fetch_page=self._page(Inbox.EXTERNAL), tasks=tasks),
        }
        self.app_menu = self._build_menu()
        self.sidebar = Sidebar(models=self.models, menu=self.app_menu, theme=theme, now=now)
        self.tabs = self.sidebar.tabs
        self.lists = self.sidebar.lists
        self.pane = ConversationPane(
            theme=theme, me=bridge.me, now=now, tasks=tasks, spell_out_emoji=spell_out_emoji
        )
        self.messages = self.pane.messages
        self.message_view = self.pane.message_view
        self.composer = self.pane.composer
        self._build_layout(theme)
        # T5: offline, connecting or signed out, said quietly above the inboxes.
        self.connection_indicator = ConnectionIndicator(theme=theme, parent=self.sidebar)
        column = self.sidebar.layout()
        assert isinstance(column, QVBoxLayout)
        column.insertWidget(2, self.connection_indicator)  # below do not disturb
        self._unsubscribe_connection: Callable[[], None] | None = None
        if connection is not None:
            self.set_connection(connection)

        # Notifications: the in-app banner always, the system's where it works (D3).
        self.banner = BannerNotifier(self.pane.conversation_box)
        self.notifications = NotificationCenter(
            banner=self.banner, system=system_notifiers or [], parent=self
        )
        self.alerts = Alerts(
            service=service,
            center=self.notifications,
            pinger=pinger,
            is_on_screen=self.is_on_screen,
        )
        # S1: what is on screen long enough, with input, becomes seen.
        self.seen_tracker = SeenTracker(
            window=self,
            view=self.message_view,
            clock=clock,
            idle_probe=idle_probe,
            unseen_ids=self.messages.unseen_ids,
        )
        self._dnd_timer = QTimer(self)  # fires when do not disturb ends, to say so
        self._dnd_timer.setSingleShot(True)
        self._dnd_timer.timeout.connect(self.refresh_dnd)
        self._connect()
        self.refresh_dnd()
        # D6: a size that fits the screen (at 200 % a 1366x768 screen is 683x384), and the
        # place and splitter of last time, on a screen that still exists.
        (self._place or WindowPlace(None)).restore(self, self.splitter)

    def refresh_dnd(self, *_args: object) -> None:
        """N6 from the stored settings: said in the sidebar and, through `dnd_changed`, the tray."""
        self.dnd = dnd_state(self.me.settings, now_local=self._now().astimezone())
        self.sidebar.set_dnd(self.dnd.text)
        self._dnd_timer.stop()
        if self.dnd.ends_at is not None:
            left_ms = (self.dnd.ends_at - self._now()).total_seconds() * 1000
            self._dnd_timer.start(int(min(max(left_ms, 0) + 500, 2**31 - 1)))
        self.dnd_changed.emit(self.dnd.text)

    def set_connection(self, connection: TeamSync, *, center: CenterFacade | None = None) -> None:
        """T5: the team sync whose state the indicator and the Account tab say, and the server
        that holds what the replica does not (`center`); a desktop makes both behind its first
        window."""
        self.connection = connection
        if center is not None:
            self.center = center
        self._unsubscribe_connection = connection.subscribe_state(self._on_connection_state_changed)
        self.connection_indicator.set_state(connection.state)

    def _on_connection_state_changed(self, state: ConnectionState) -> None:
        self.connection_indicator.set_state(state)

    def save_place(self) -> None:
        """Remember where the window is and how the splitter sits (at close and quit)."""
        if self._place is not None:
            self._place.save(self, self.splitter)

    def _build_menu(self) -> QMenu:
        """The app menu: Settings for everyone, the Messaging Center for administrators only."""
        self.settings_action = QAction("Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.messaging_center_action = QAction("Messaging Center…", self)
        self.messaging_center_action.setShortcut(QKeySequence("Ctrl+Shift+M"))
        self.quit_action = QAction("Quit Deskbell", self)
        self.update_check_action = QAction("Check for updates…", self)
        menu = QMenu(self)
        menu.setAccessibleName("Deskbell menu")
        menu.addAction(self.messaging_center_action)
        menu.addAction(self.settings_action)
        menu.addAction(self.update_check_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        self.addActions([self.settings_action, self.messaging_center_action])
        self._show_admin_tools(self.bridge.me)
        return menu

    def _build_layout(self, theme: Theme) -> None:
        splitter = QSplitter()
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.pane)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 740])
        splitter.setHandleWidth(1)
        self.splitter = splitter
        self.setCentralWidget(splitter)
        self.setStyleSheet(
            f"QSplitter::handle {{ background: {theme.separator.name()}; }}"
            f" QListView {{ background: {theme.base.name()}; }}"
            f" #conversationHeader {{ background: {theme.base.name()}; }}"
            f" #newItemButton {{ background: {theme.accent_fill.name()};"
            f" color: {theme.on_accent.name()};"
            " border: none; border-radius: 6px; padding: 6px 12px; font-weight: bold; }"
            f" #goToButton {{ text-align: left; color: {theme.muted.name()};"
            f" border: 1px solid {theme.separator.name()}; border-radius: 6px;"
            f" padding: 6px 10px; background: {theme.base.name()}; }}"
            " #menuButton { border: none; padding: 4px 8px; font-size: 16px; }"
            " #menuButton::menu-indicator { image: none; }"
        )

    def _connect(self) -> None:
        self.settings_action.triggered.connect(self._on_settings_action_triggered)
        self.messaging_center_action.triggered.connect(self._on_messaging_center_action_triggered)
        self.quit_action.triggered.connect(self.quit_requested)
        self.sidebar.new_button.clicked.connect(self._on_new_button_clicked)
        self.sidebar.switch_button.clicked.connect(self.open_quick_switch)
        self.sidebar.conversation_chosen.connect(self._on_sidebar_conversation_chosen)
        self.pane.follow_clicked.connect(self._on_follow_button_clicked)
        self.composer.send_requested.connect(self._on_composer_send_requested)
        self.notifications.opened.connect(self._on_notifications_opened)
        self.seen_tracker.seen.connect(self._on_seen_tracker_seen)
        self.bridge.counts_changed.connect(self._on_bridge_counts_changed)
        self.bridge.conversations_changed.connect(self._on_bridge_conversations_changed)
        self.bridge.message_arrived.connect(self._on_bridge_message_arrived)
        self.bridge.me_changed.connect(self._show_admin_tools)
        # A customer coming into or leaving the chat is a person event (C2).
        self.bridge.people_changed.connect(self._on_bridge_people_changed)
        self.bridge.me_changed.connect(self.refresh_dnd)
        for keys, slot in (
            ("Ctrl+1", lambda: self.show_inbox(INTERNAL_TAB)),
            ("Ctrl+2", lambda: self.show_inbox(EXTERNAL_TAB)),
            ("Ctrl+K", self.open_quick_switch),
            ("Ctrl+N", self._on_new_button_clicked),
        ):
            QShortcut(QKeySequence(keys), self).activated.connect(slot)

    # --- loading ---------------------------------------------------------------------------

    def _page(self, inbox: tuple[ConversationKind, ...]) -> PageFetcher:
        async def fetch(offset: int, limit: int) -> list[ConversationRow]:
            return await self.service.open_conversations(
                person_id=self.bridge.me.id, inbox=inbox, limit=limit, offset=offset
            )

        return fetch

    @property
    def me(self) -> PersonInfo:
        return self.bridge.me

    async def load(self) -> None:
        """The first page of both inboxes and the newest conversation, then `shown_with_data`."""
        for model in self.models.values():
            await model.reload()
        self._on_bridge_counts_changed(self.bridge.counts)
        first = self.models[INTERNAL_TAB].rows or self.models[EXTERNAL_TAB].rows
        if first:
            await self.open_conversation(first[0].id)
        self.shown_with_data.emit()

    # --- what is on screen -----------------------------------------------------------------

    def is_on_screen(self, conversation_id: int) -> bool:
        """N4: this conversation is open in the active, visible, not minimized window."""
        return (
            self.current is not None
            and self.current.id == conversation_id
            and self.isVisible()
            and self.isActiveWindow()
            and not (self.windowState() & Qt.WindowState.WindowMinimized)
        )

    def show_inbox(self, tab: int) -> None:
        self.tabs.setCurrentIndex(tab)
        self.lists[tab].setFocus()

    def bring_forward(self) -> None:
        """D1: tray "Open", a second launch, a notification click."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    async def open_conversation(self, conversation_id: int) -> None:
        # `current`, the header and the messages change together, after the last await: set
        # earlier, `current` named a conversation whose header and rows were not there yet, and
        # of two quick opens the slower one could win.
        self._opening += 1
        ticket = self._opening
        info = await self.service.conversation(conversation_id)
        me_id = self.me.id

        async def fetch(before_id: int | None, limit: int) -> list[MessageRow]:
            return await self.service.messages(
                conversation_id=conversation_id, viewer_id=me_id, before_id=before_id, limit=limit
            )

        if ticket != self._opening:
            return
        await self.messages.open(conversation_id=conversation_id, fetch=fetch)
        if ticket != self._opening:
            return
        self.current = info
        self.pane.show_conversation(info)
        tab = EXTERNAL_TAB if info.kind == ConversationKind.EXTERNAL else INTERNAL_TAB
        self.tabs.setCurrentIndex(tab)
        self._select_row(tab, conversation_id)
        self.message_view.scroll_to_newest()
        self.alerts.withdraw(conversation_id)
        self.seen_tracker.refresh()
        await self.show_customer_presence()

    async def show_customer_presence(self) -> None:
        """C2: on a customer conversation, whether its customer has the chat open now (the
        first of them who does, else the first customer); no line on an internal one."""
        info = self.current
        customers = [m for m in info.members if m.kind == PersonKind.CUSTOMER] if info else []
        if info is None or info.kind != ConversationKind.EXTERNAL or not customers:
            self.pane.show_customer_presence(None, in_chat=False)
            return
        try:
            present = await self.center.customers_in_chat([c.id for c in customers])
        except DeskbellError as exc:  # in a team, offline: not known now; said on the next event
            log.info("customer presence not known: %s", exc)
            return
        if self.current is not info:
            return  # another conversation opened meanwhile
        shown = next((c for c in customers if c.id in present), customers[0])
        self.pane.show_customer_presence(shown.name, in_chat=shown.id in present)

    def _select_row(self, tab: int, conversation_id: int) -> None:
        row = self.models[tab].row_of(conversation_id)
        view = self.lists[tab]
        if row is None:
            view.clearSelection()
            return
        index = self.models[tab].index(row, 0)
        view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

    def conversation_rows(self) -> list[ConversationRow]:
        return [r for model in self.models.values() for r in model.rows]

    # --- slots -----------------------------------------------------------------------------

    def _on_sidebar_conversation_chosen(self, conv_id: int) -> None:
        if self.current is None or self.current.id != conv_id:
            self.tasks.start(self.open_conversation(conv_id), name="open-conversation")

    def open_quick_switch(self) -> QuickSwitch:
        from ui.widgets.quick_switch import QuickSwitch

        dialog = QuickSwitch(
            self.conversation_rows(), parent=self, search=self._find_conversations, tasks=Tasks()
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.chosen.connect(self._on_quick_switch_chosen)
        dialog.open()
        return dialog

    async def _find_conversations(self, text: str) -> list[ConversationRow]:
        return await self.service.find_conversations(person_id=self.me.id, text=text)

    def _on_quick_switch_chosen(self, conversation_id: int) -> None:
        self.tasks.start(self.open_conversation(conversation_id), name="open-conversation")

    def _on_notifications_opened(self, key: str) -> None:
        self.bring_forward()
        self.tasks.start(self.open_conversation(int(key)), name="open-conversation")

    def _on_composer_send_requested(self, text: str) -> None:
        if self.current is not None:
            self.tasks.start(self._send(self.current.id, text), name="post")

    async def _send(self, conversation_id: int, text: str) -> None:
        try:
            await self.service.post(
                author=self.me.email, text=text, conversation_id=conversation_id
            )
        except Exception as exc:  # the service's refusal, said to the person who typed
            QMessageBox.warning(self, APP_TITLE, f"The message was not sent: {exc}")
            return
        self.composer.clear()
        self.message_view.scroll_to_newest()

    def _on_seen_tracker_seen(self, message_ids: list[int]) -> None:
        self.messages.mark_seen_locally(message_ids)
        self.tasks.start(
            self.service.mark_seen(person_id=self.me.id, message_ids=message_ids), name="seen"
        )

    def _on_follow_button_clicked(self) -> None:
        if self.current is not None and self.current.item_number is not None:
            self.tasks.start(self._toggle_follow(self.current), name="follow")

    async def _toggle_follow(self, info: ConversationInfo) -> None:
        assert info.item_number is not None
        if any(m.id == self.me.id for m in info.members):
            await self.service.unfollow(number=info.item_number, email=self.me.email)
        else:
            await self.service.follow(number=info.item_number, email=self.me.email)
        if self.current is not None and self.current.id == info.id:
            self.current = await self.service.conversation(info.id)
            self.pane.show_conversation(self.current)

    def _show_admin_tools(self, me: PersonInfo) -> None:
        self.messaging_center_action.setVisible(me.is_admin)
        self.messaging_center_action.setEnabled(me.is_admin)

    def _on_settings_action_triggered(self) -> None:
        self.tasks.start(self.open_settings(), name="settings")

    async def open_settings(self) -> SettingsDialog:
        """Settings (SMTP and my notifications); one dialog at a time, brought forward."""
        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return self.settings_dialog
        await self.service.opened()  # it reads the settings the service holds
        from ui.windows.settings_dialog import SettingsDialog

        dialog = SettingsDialog(
            service=self.service,
            me=self.me,
            login_starter=self._login_starter,
            updates=self.update_prefs,
            team_account=self.team_account,
            connection=self.connection,
            center=self.center,
            parent=self,
        )
        dialog.sign_out_requested.connect(self.sign_out_requested)
        # Forgotten and deleted on `finished`, while both objects are whole: a `destroyed`
        # slot could run inside this window's own destructor.
        dialog.finished.connect(self._on_settings_dialog_finished)
        self.settings_dialog = dialog
        await dialog.load()
        dialog.open()
        return dialog

    def _on_settings_dialog_finished(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.deleteLater()
        self.settings_dialog = None

    def _on_messaging_center_action_triggered(self) -> None:
        self.tasks.start(self._open_messaging_center_when_ready(), name="messaging-center")

    async def _open_messaging_center_when_ready(self) -> None:
        await self.service.opened()  # its pages use the service's parts, not only operations
        self.open_messaging_center()

    def open_messaging_center(self) -> MessagingCenter | None:
        """The administrator's Messaging Center (M1-M6); nothing for anyone else."""
        if not self.me.is_admin:
            return None
        if self.messaging_center is not None and self.messaging_center.isVisible():
            self.messaging_center.raise_()
            self.messaging_center.activateWindow()
            return self.messaging_center
        from ui.windows.messaging_center import MessagingCenter

        center = MessagingCenter(self.center, self.me, self, connection=self.connection)
        center.finished.connect(self._on_messaging_center_finished)
        self.messaging_center = center
        center.show()
        return center

    def _on_messaging_center_finished(self) -> None:
        if self.messaging_center is not None:
            self.messaging_center.deleteLater()
        self.messaging_center = None

    def _on_new_button_clicked(self) -> None:
        self.tasks.start(self._new_item(), name="new-item")

    async def _new_item(self) -> None:
        from ui.widgets.new_item_dialog import NewItemDialog

        dialog = NewItemDialog(people=await self.service.people(), me=self.me, parent=self)
        dialog.accepted.connect(
            lambda: self.tasks.start(
                self._create_item(dialog.title(), dialog.follower_emails()), name="create-item"
            )
        )
        dialog.open()

    async def _create_item(self, title: str, followers: list[str]) -> None:
        """In a team the server creates and numbers the item (online only); it reaches the
        replica through the sync, and opens when it arrives."""
        try:
            item = await self.center.create_item(title=title, followers=followers)
        except DeskbellError as exc:
            QMessageBox.warning(self, APP_TITLE, f"The item was not created: {exc}")
            return
        self._open_when_arrives = item.internal_conversation_id
        try:
            await self.open_conversation(item.internal_conversation_id)
        except NotFoundError:
            return  # not in the replica yet: `_refresh` opens it
        self._open_when_arrives = None

    def _on_bridge_counts_changed(self, counts: UnseenCounts) -> None:
        """N3: tabs, rows and title from one count; N7: the title carries it without a tray."""
        self.counts = counts
        self.sidebar.set_tab_count(INTERNAL_TAB, counts.internal)
        self.sidebar.set_tab_count(EXTERNAL_TAB, counts.external)
        for model in self.models.values():
            model.set_counts(counts.by_conversation)
        self.setWindowTitle(window_title(APP_TITLE, counts.total))
        self.alerts.on_counts(counts)

    def _on_bridge_conversations_changed(self, conversation_ids: frozenset[int]) -> None:
        self.tasks.start(self._refresh(conversation_ids), name="refresh")

    async def _refresh(self, conversation_ids: frozenset[int]) -> None:
        ids = sorted(conversation_ids)
        found: set[int] = set()
        for tab, inbox in ((INTERNAL_TAB, Inbox.INTERNAL), (EXTERNAL_TAB, Inbox.EXTERNAL)):
            rows = await self.service.open_conversations(
                person_id=self.me.id, inbox=inbox, conversation_ids=ids
            )
            found |= {r.id for r in rows}
            self.models[tab].upsert(rows)
        for model in self.models.values():
            model.remove(i for i in ids if i not in found)
        if self.current is not None and self.current.id in conversation_ids:
            await self.messages.refresh()
            self.seen_tracker.refresh()
        if self._open_when_arrives in conversation_ids:
            conversation_id, self._open_when_arrives = self._open_when_arrives, None
            await self.open_conversation(conversation_id)

    def _on_bridge_people_changed(self) -> None:
        if self.current is not None and self.current.kind == ConversationKind.EXTERNAL:
            self.tasks.start(self.show_customer_presence(), name="customer-presence")

    def _on_bridge_message_arrived(self, message: MessageRow) -> None:
        row = None
        for model in self.models.values():
            row = row or model.conversation(message.conversation_id)
        title = row_label(row) if row is not None else f"conversation {message.conversation_id}"
        self.alerts.on_message(message, me=self.me, title=title)

    def closeEvent(self, event: QCloseEvent) -> None:
        """D1: closing keeps the app in the tray. With no tray (none yet, or its host died)
        the window is minimized instead: hidden, the app would be out of reach (N7)."""
        self.save_place()
        event.ignore()
        if self._keep_in_tray():
            self.hide()
        else:
            self.showMinimized()
