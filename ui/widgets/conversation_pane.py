"""The right side of the main window: the conversation's header, its messages (with the
in-app banner's box above them) and the composer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from services.api import ConversationInfo, PersonInfo
from ui.format import kind_label
from ui.tasks import Tasks
from ui.theme import Theme
from ui.widgets.composer import Composer
from ui.widgets.message_view import MessageDelegate, MessageListModel, MessageView

__all__ = ["NO_CONVERSATION", "NO_MESSAGES", "ConversationPane"]

NO_CONVERSATION = (
    "No conversation open.\nPick one on the left, press Ctrl+K to find one, "
    "or Ctrl+N to create an item."
)
NO_MESSAGES = "No messages yet.\nWrite the first one below."


class ConversationPane(QWidget):
    """Emits `follow_clicked` for the Follow/Unfollow button; the window decides."""

    follow_clicked = Signal()

    def __init__(
        self,
        *,
        theme: Theme,
        me: PersonInfo,
        now: Callable[[], datetime],
        tasks: Tasks,
        spell_out_emoji: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.me_id = me.id
        self.header_title = QLabel("Pick a conversation", self)
        self.header_title.setTextFormat(Qt.TextFormat.PlainText)
        # Screen readers say a widget's accessible name: the content, never what it is for.
        self.header_title.setAccessibleName(self.header_title.text())
        self.header_title.setAccessibleDescription("Conversation")
        font = self.header_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.header_title.setFont(font)
        self.header_members = QLabel("", self)
        self.header_members.setTextFormat(Qt.TextFormat.PlainText)
        self.header_members.setAccessibleDescription("Who reads this conversation")
        self.header_members.setStyleSheet(f"color: {theme.muted.name()};")
        # C2: on a customer conversation, whether the customer has the chat open now.
        self.header_presence = QLabel("", self)
        self.header_presence.setTextFormat(Qt.TextFormat.PlainText)
        self.header_presence.setAccessibleDescription("Whether the customer is in the chat")
        self.header_presence.setVisible(False)
        self._presence_colours = (theme.accent.name(), theme.muted.name())
        self.follow_button = QPushButton("Follow", self)
        self.follow_button.setAccessibleName("Follow or unfollow this item")
        self.follow_button.setVisible(False)
        self.follow_button.clicked.connect(self.follow_clicked)
        header = QWidget(self)
        header.setObjectName("conversationHeader")
        header_layout = QHBoxLayout(header)
        header_layout.setContentsMargins(16, 10, 12, 10)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.header_title)
        titles.addWidget(self.header_members)
        titles.addWidget(self.header_presence)
        header_layout.addLayout(titles, 1)
        header_layout.addWidget(self.follow_button)

        self.messages = MessageListModel(tasks=tasks, viewer_email=me.email)
        self.message_delegate = MessageDelegate(
            theme=theme, me_id=me.id, me_email=me.email, now=now, spell_out_emoji=spell_out_emoji
        )
        self.message_view = MessageView(
            model=self.messages, delegate=self.message_delegate, tasks=tasks
        )
        self.composer = Composer(theme=theme)

        # Said in place of the messages when there are none (no conversation, or a new one).
        self.placeholder = QLabel(NO_CONVERSATION, self)
        self.placeholder.setObjectName("conversationPlaceholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setTextFormat(Qt.TextFormat.PlainText)
        self.placeholder.setStyleSheet(
            f"color: {theme.muted.name()}; background: {theme.base.name()}; padding: 24px;"
        )

        # The banner takes the top of this box (ui/widgets/banner.py), pushing the messages down.
        self.conversation_box = QWidget(self)
        box = QVBoxLayout(self.conversation_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.message_view, 1)
        box.addWidget(self.placeholder, 1)
        self._open = False
        for signal in (
            self.messages.modelReset,
            self.messages.rowsInserted,
            self.messages.rowsRemoved,
        ):
            signal.connect(self._on_messages_changed)
        self._on_messages_changed()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(_line(theme))
        layout.addWidget(self.conversation_box, 1)
        layout.addWidget(_line(theme))
        layout.addWidget(self.composer)

    def show_conversation(self, info: ConversationInfo) -> None:
        """The header and the composer for `info`."""
        label = f"#{info.item_number} {info.title}" if info.item_number else info.title
        self.header_title.setText(label)
        self.header_title.setAccessibleName(label)
        names = ", ".join(m.name for m in info.members)
        self.header_members.setText(f"{kind_label(info.kind)} · {names}")
        self.header_members.setAccessibleName(self.header_members.text())
        following = any(m.id == self.me_id for m in info.members)
        self.follow_button.setVisible(info.item_number is not None)
        self.follow_button.setText("Unfollow" if following else "Follow")
        self.composer.set_kind(info.kind)
        self._open = True
        self._on_messages_changed()

    def show_customer_presence(self, customer: str | None, *, in_chat: bool) -> None:
        """Say whether `customer` is in the chat now; None hides the line (not a customer
        conversation, or nothing known yet)."""
        if customer is None:
            self.header_presence.setVisible(False)
            return
        text = f"● {customer} is in the chat now" if in_chat else f"{customer} is not in the chat"
        self.header_presence.setText(text)
        self.header_presence.setAccessibleName(text.removeprefix("● "))
        colour = self._presence_colours[0 if in_chat else 1]
        self.header_presence.setStyleSheet(f"color: {colour};")
        self.header_presence.setVisible(True)

    def _on_messages_changed(self, *_args: object) -> None:
        empty = self.messages.rowCount() == 0
        self.placeholder.setText(NO_MESSAGES if self._open else NO_CONVERSATION)
        self.placeholder.setVisible(empty)
        self.message_view.setVisible(not empty)


def _line(theme: Theme) -> QFrame:
    line = QFrame()
    line.setFixedHeight(1)
    line.setStyleSheet(f"background: {theme.separator.name()};")
    return line
