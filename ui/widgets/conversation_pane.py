"""The right side of the main window: the conversation's header, its messages (with the
in-app banner's box above them) and the composer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from services.views import ConversationInfo
from ui.format import kind_label
from ui.tasks import Tasks
from ui.theme import Theme
from ui.widgets.composer import Composer
from ui.widgets.message_view import MessageDelegate, MessageListModel, MessageView

__all__ = ["ConversationPane"]


class ConversationPane(QWidget):
    """Emits `follow_clicked` for the Follow/Unfollow button; the window decides."""

    follow_clicked = Signal()

    def __init__(
        self,
        *,
        theme: Theme,
        me_id: int,
        now: Callable[[], datetime],
        tasks: Tasks,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.me_id = me_id
        self.header_title = QLabel("Pick a conversation", self)
        self.header_title.setTextFormat(Qt.TextFormat.PlainText)
        self.header_title.setAccessibleName("Conversation title")
        font = self.header_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.header_title.setFont(font)
        self.header_members = QLabel("", self)
        self.header_members.setTextFormat(Qt.TextFormat.PlainText)
        self.header_members.setAccessibleName("Followers")
        self.header_members.setStyleSheet(f"color: {theme.muted.name()};")
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
        header_layout.addLayout(titles, 1)
        header_layout.addWidget(self.follow_button)

        self.messages = MessageListModel(tasks=tasks)
        self.message_delegate = MessageDelegate(theme=theme, me_id=me_id, now=now)
        self.message_view = MessageView(
            model=self.messages, delegate=self.message_delegate, tasks=tasks
        )
        self.composer = Composer(theme=theme)

        # The banner takes the top of this box (ui/widgets/banner.py), pushing the messages down.
        self.conversation_box = QWidget(self)
        box = QVBoxLayout(self.conversation_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.message_view, 1)

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
        names = ", ".join(m.name for m in info.members)
        self.header_members.setText(f"{kind_label(info.kind)} · {names}")
        following = any(m.id == self.me_id for m in info.members)
        self.follow_button.setVisible(info.item_number is not None)
        self.follow_button.setText("Unfollow" if following else "Follow")
        self.composer.set_kind(info.kind)


def _line(theme: Theme) -> QFrame:
    line = QFrame()
    line.setFixedHeight(1)
    line.setStyleSheet(f"background: {theme.separator.name()};")
    return line
