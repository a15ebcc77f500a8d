"""The conversation view: a lazily loaded message model and a bubble delegate with the E10
status row (sent; seen by whom, when; emailed to whom, when, status).

Text is laid out with `QTextLayout` as plain text (a message is never interpreted as HTML),
wrapped at word boundaries and inside a word only when that word is wider than the bubble. The
same layout gives the row height and paints it, so rows fit their text exactly.
The newest page (200) loads first; older pages load as the view is scrolled to the top, so a
conversation of 10,000 messages opens as fast as one of 200.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QIcon,
    QKeyEvent,
    QPainter,
    QResizeEvent,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QWidget,
)

from services.api import MessageRow
from ui.format import day_label, format_time, local_time, status_parts, status_tooltip
from ui.icons import status_icon
from ui.platform.fonts import readable_emoji
from ui.roles import MESSAGE_ID_ROLE, MESSAGE_ROLE
from ui.tasks import Tasks
from ui.theme import Theme

__all__ = [
    "PAGE_SIZE",
    "MessageDelegate",
    "MessageListModel",
    "MessageView",
    "TextBlock",
]

PAGE_SIZE = 200

Index = QModelIndex | QPersistentModelIndex
Fetch = Callable[[int | None, int], Awaitable[list[MessageRow]]]  # (before_id, limit)


class MessageListModel(QAbstractListModel):
    """One conversation's messages, oldest first; the newest page first, older on demand."""

    def __init__(
        self, *, tasks: Tasks, viewer_email: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._viewer_email = viewer_email
        self._rows: list[MessageRow] = []
        self._index: dict[int, int] = {}
        self._fetch: Fetch | None = None
        self._has_older = False
        self._loading = False
        self.conversation_id: int | None = None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.text
        if role == MESSAGE_ROLE:
            return row
        if role == MESSAGE_ID_ROLE:
            return row.id
        if role == Qt.ItemDataRole.ToolTipRole:
            return status_tooltip(row.status, viewer_email=self._viewer_email)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            author = row.author.name if row.author else "Deskbell"
            return f"{author}: {row.text}"
        return None

    @property
    def rows(self) -> list[MessageRow]:
        return list(self._rows)

    def unseen_ids(self) -> set[int]:
        return {r.id for r in self._rows if r.unseen_by_viewer}

    async def open(self, *, conversation_id: int | None, fetch: Fetch | None) -> None:
        """Show the newest page of another conversation (or nothing)."""
        self.conversation_id = conversation_id
        self._fetch = fetch
        rows = await fetch(None, PAGE_SIZE) if fetch is not None else []
        if self.conversation_id != conversation_id:
            return  # another conversation was opened meanwhile
        self.beginResetModel()
        self._rows = rows
        self._has_older = len(rows) == PAGE_SIZE
        self._reindex()
        self.endResetModel()

    def can_fetch_older(self) -> bool:
        return self._has_older and not self._loading and self._fetch is not None

    async def fetch_older(self) -> int:
        """Load the page before the oldest row; returns how many rows came."""
        if not self.can_fetch_older() or self._fetch is None:
            return 0
        self._loading = True
        conv = self.conversation_id
        try:
            rows = await self._fetch(self._rows[0].id if self._rows else None, PAGE_SIZE)
        finally:
            self._loading = False
        if conv != self.conversation_id:
            return 0
        rows = [r for r in rows if r.id not in self._index]
        self._has_older = len(rows) == PAGE_SIZE
        if rows:
            self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
            self._rows[0:0] = rows
            self._reindex()
            self.endInsertRows()
            # The formerly first row may lose its date separator.
            if len(self._rows) > len(rows):
                moved = self.index(len(rows), 0)
                self.dataChanged.emit(moved, moved)
        return len(rows)

    async def refresh(self) -> list[MessageRow]:
        """Re-read the newest page: new messages append, changed statuses repaint (E10).
        Returns the rows that are new here."""
        if self._fetch is None:
            return []
        conv = self.conversation_id
        rows = await self._fetch(None, PAGE_SIZE)
        if conv != self.conversation_id:
            return []
        return self.merge(rows)

    def merge(self, rows: Iterable[MessageRow]) -> list[MessageRow]:
        new: list[MessageRow] = []
        for row in rows:
            i = self._index.get(row.id)
            if i is None:
                if self._rows and row.id < self._rows[0].id:
                    continue  # older than what is loaded: comes with its page
                new.append(row)
            elif row != self._rows[i]:
                self._rows[i] = row
                # The next row's separators (the unread divider) depend on this one.
                last = min(i + 1, len(self._rows) - 1)
                self.dataChanged.emit(self.index(i, 0), self.index(last, 0))
        if new:
            new.sort(key=lambda r: r.id)
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._rows.extend(new)
            self._reindex(first)
            self.endInsertRows()
        return new

    def mark_seen_locally(self, message_ids: Iterable[int]) -> None:
        """Seen here, before the service's echo: stop reporting these ids (S1)."""
        for mid in message_ids:
            i = self._index.get(mid)
            if i is not None and self._rows[i].unseen_by_viewer:
                r = self._rows[i]
                self._rows[i] = MessageRow(
                    id=r.id,
                    conversation_id=r.conversation_id,
                    author=r.author,
                    text=r.text,
                    created_at=r.created_at,
                    source=r.source,
                    status=r.status,
                    unseen_by_viewer=False,
                )

    def _reindex(self, start: int = 0) -> None:
        if start == 0:
            self._index = {}
        for i in range(start, len(self._rows)):
            self._index[self._rows[i].id] = i


class TextBlock:
    """A message's text laid out at a width: wrapped at word boundaries, and inside a word
    only when that one word is wider than the line (a URL, a hash)."""

    def __init__(self, font: QFont, text: str, width: int) -> None:
        # QTextLayout breaks lines only at U+2028; drawText did this for us before.
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\u2028")
        self.layout = QTextLayout(text, font)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.layout.setTextOption(option)
        y = 0.0
        used = 0.0
        self.layout.beginLayout()
        while True:
            line = self.layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(max(1, width))
            line.setPosition(QPointF(0, y))
            y += line.height()
            used = max(used, line.naturalTextWidth())
        self.layout.endLayout()
        self.height = math.ceil(y)
        self.width = min(width, math.ceil(used))

    def lines(self) -> list[str]:
        """Each line's text (tests)."""
        text = self.layout.text()
        out = []
        for i in range(self.layout.lineCount()):
            line = self.layout.lineAt(i)
            out.append(text[line.textStart() : line.textStart() + line.textLength()])
        return out

    def draw(self, painter: QPainter, x: int, y: int) -> None:
        self.layout.draw(painter, QPointF(x, y))


class MessageDelegate(QStyledItemDelegate):
    """A chat bubble per message: mine on the right, others' on the left; the status row under."""

    PAD = 10
    GAP = 6

    def __init__(
        self,
        *,
        theme: Theme,
        me_id: int,
        now: Callable[[], datetime],
        me_email: str | None = None,
        spell_out_emoji: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.theme = theme
        self.me_id = me_id
        self.me_email = me_email
        self.spell_out_emoji = spell_out_emoji  # no emoji font here: words, not boxes
        self._now = now
        self._heights: dict[tuple[int, int, str | None, bool], int] = {}
        self._icons: dict[str, QIcon] = {}

    def clear_cache(self) -> None:
        self._heights.clear()

    def _bubble_width(self, total: int) -> int:
        return max(160, min(int(total * 0.78), 680))

    def _fonts(self, base: QFont) -> tuple[QFont, QFont, QFont]:
        author = QFont(base)
        author.setBold(True)
        small = QFont(base)
        small.setPointSizeF(max(7.0, base.pointSizeF() * 0.82))
        return base, author, small

    def _row_width(self, option: QStyleOptionViewItem) -> int:
        # The view paints each row as wide as its viewport; size the row for that width, so
        # the height asked for is the height painted.
        view = option.widget
        if isinstance(view, QAbstractItemView):
            return view.viewport().width()
        return option.rect.width() or 600

    def _inner_width(self, row_width: int) -> int:
        return self._bubble_width(row_width - 24) - 2 * self.PAD

    def separators(self, index: Index) -> tuple[str | None, bool]:
        """(a date separator's text, whether the unread divider goes) above this row: a day
        label where the day changes, the divider above the first unseen message."""
        row = index.data(MESSAGE_ROLE)
        if not isinstance(row, MessageRow):
            return None, False
        model = index.model()
        before = model.index(index.row() - 1, 0).data(MESSAGE_ROLE) if index.row() else None
        day = local_time(row.created_at).date()
        show_day = not isinstance(before, MessageRow) or (
            local_time(before.created_at).date() != day
        )
        label = day_label(day, today=local_time(self._now()).date()) if show_day else None
        unread = row.unseen_by_viewer and not (
            isinstance(before, MessageRow) and before.unseen_by_viewer
        )
        return label, unread

    def _separator_height(self, small: QFont) -> int:
        return QFontMetrics(small).height() + 14

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        row = index.data(MESSAGE_ROLE)
        width = self._row_width(option)
        if not isinstance(row, MessageRow):
            return QSize(width, 20)
        day, unread = self.separators(index)
        key = (row.id, width, day, unread)
        if key not in self._heights:
            body, author, small = self._fonts(QFont(option.font))
            text = TextBlock(body, self.display_text(row), self._inner_width(width))
            h = QFontMetrics(author).height() + 4 + text.height
            h += 2 * self.PAD + self.GAP + QFontMetrics(small).height() + 14
            h += self._separator_height(small) * ((day is not None) + unread)
            self._heights[key] = h
        # Width 1: never wider than the viewport (no horizontal scroll bar); paint gets it all.
        return QSize(1, self._heights[key])

    def _paint_separator(
        self, painter: QPainter, rect: QRect, text: str, *, small: QFont, unread: bool
    ) -> None:
        t = self.theme
        colour = t.accent if unread else t.muted
        font = QFont(small)
        font.setBold(True)
        fm = QFontMetrics(font)
        text_w = fm.horizontalAdvance(text) + 16
        mid = rect.center().y()
        painter.setPen(colour if unread else t.separator)
        painter.drawLine(rect.left() + 16, mid, rect.center().x() - text_w // 2, mid)
        painter.drawLine(rect.center().x() + text_w // 2, mid, rect.right() - 16, mid)
        painter.setPen(colour)
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _icon(self, name: str) -> QIcon:
        if name not in self._icons:
            colour = {
                "seen": self.theme.accent,
                "failed": self.theme.external,
            }.get(name, self.theme.muted)
            self._icons[name] = status_icon(name, color=colour)
        return self._icons[name]

    def display_text(self, row: MessageRow) -> str:
        """The message as painted: as written, or with emoji spelled out where no font has them."""
        return readable_emoji(row.text) if self.spell_out_emoji else row.text

    def status_parts(self, row: MessageRow) -> list[tuple[str, str]]:
        """The status row under `row`, as the signed-in person reads it (E10, S2)."""
        return status_parts(row.status, now=self._now(), viewer_email=self.me_email)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row = index.data(MESSAGE_ROLE)
        if not isinstance(row, MessageRow):
            return
        t = self.theme
        rect: QRect = option.rect
        body, author_font, small = self._fonts(QFont(option.font))
        mine = row.author is not None and row.author.id == self.me_id
        inner = self._inner_width(rect.width())
        block = TextBlock(body, self.display_text(row), inner)
        afm = QFontMetrics(author_font)
        head_h = afm.height() + 4
        name = "You" if mine else (row.author.name if row.author else "Deskbell")
        when = format_time(row.created_at, now=self._now())
        # Shrink short messages to their text, as messengers do; the lines stay as laid out.
        head_w = afm.horizontalAdvance(name) + 12 + QFontMetrics(small).horizontalAdvance(when)
        bw = min(inner, max(block.width, head_w, 120)) + 2 * self.PAD
        inner = bw - 2 * self.PAD
        bh = head_h + block.height + 2 * self.PAD
        x = rect.right() - 12 - bw if mine else rect.left() + 12
        day, unread = self.separators(index)
        top = rect.top()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        sep_h = self._separator_height(small)
        if day is not None:
            self._paint_separator(
                painter, QRect(rect.left(), top, rect.width(), sep_h), day, small=small,
                unread=False,
            )  # fmt: skip
            top += sep_h
        if unread:
            self._paint_separator(
                painter, QRect(rect.left(), top, rect.width(), sep_h), "Unread", small=small,
                unread=True,
            )  # fmt: skip
            top += sep_h
        bubble = QRect(x, top + 6, bw, bh)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(t.bubble_mine if mine else t.bubble_other)
        painter.drawRoundedRect(bubble, 12, 12)
        if row.unseen_by_viewer:
            painter.setBrush(t.accent_fill)
            painter.drawRoundedRect(QRect(bubble.left(), bubble.top() + 8, 3, bh - 16), 1.5, 1.5)

        painter.setFont(author_font)
        painter.setPen(t.accent if mine else t.text)
        head = QRect(bubble.left() + self.PAD, bubble.top() + self.PAD, inner, afm.height())
        painter.drawText(head, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.setFont(small)
        painter.setPen(t.muted)
        painter.drawText(head, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, when)

        painter.setFont(body)
        painter.setPen(t.text)
        block.draw(painter, bubble.left() + self.PAD, head.bottom() + 5)

        # The status row (E10), aligned with the bubble.
        painter.setFont(small)
        sfm = QFontMetrics(small)
        icon_px = sfm.height()
        parts = self.status_parts(row)
        widths = [icon_px + 3 + sfm.horizontalAdvance(text) + 10 for _, text in parts]
        total = sum(widths)
        sx = bubble.right() - total if mine else bubble.left() + 4
        sy = bubble.bottom() + self.GAP
        for (icon_name, text), w in zip(parts, widths, strict=True):
            self._icon(icon_name).paint(painter, QRect(sx, sy, icon_px, icon_px))
            painter.setPen(t.accent if icon_name == "seen" else t.muted)
            painter.drawText(
                QRect(sx + icon_px + 3, sy, w - icon_px - 3, icon_px),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                text,
            )
            sx += w
        painter.restore()


class MessageView(QListView):
    """A QListView set up for chat: per-pixel scrolling, rows of their own height, older pages
    loaded when the top is reached, the newest message kept in view."""

    def __init__(self, *, model: MessageListModel, delegate: MessageDelegate, tasks: Tasks):
        super().__init__()
        self._tasks = tasks
        self.setModel(model)
        self.setItemDelegate(delegate)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(False)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setMouseTracking(True)
        self.setAccessibleName("Messages")
        self.verticalScrollBar().setSingleStep(24)
        self.verticalScrollBar().valueChanged.connect(self._on_scrollbar_value_changed)
        model.rowsInserted.connect(self._on_model_rows_inserted)
        model.modelReset.connect(self._on_model_reset)
        self._model = model
        self._delegate = delegate
        self._stick_to_bottom = True
        self._missed = 0  # messages that arrived while scrolled up
        # Scrolled up to read older messages: one click (or End) back to the newest.
        self.jump_button = QToolButton(self.viewport())
        self.jump_button.setObjectName("jumpToLatest")
        self.jump_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.jump_button.setStyleSheet(
            f"#jumpToLatest {{ background: {delegate.theme.accent_fill.name()};"
            f" color: {delegate.theme.on_accent.name()}; border: none; border-radius: 14px;"
            " padding: 6px 12px; font-weight: 600; }"
        )
        self.jump_button.clicked.connect(self.scroll_to_newest)
        self._show_jump_button()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._delegate.clear_cache()
        super().resizeEvent(event)
        if self._stick_to_bottom:
            # A banner above or a taller composer below shrinks the view: keep the newest
            # message in sight rather than sliding it under the edge.
            self.scrollToBottom()
        self._show_jump_button()

    def scroll_to_newest(self) -> None:
        self._stick_to_bottom = True
        self.scrollToBottom()
        self._show_jump_button()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_End:
            self.scroll_to_newest()
            return
        super().keyPressEvent(event)

    def _show_jump_button(self) -> None:
        if self._stick_to_bottom:
            self._missed = 0
        text = f"↓ {self._missed} new" if self._missed else "↓ Latest"
        self.jump_button.setText(text)
        self.jump_button.setAccessibleName(
            f"Jump to the latest message, {self._missed} new" if self._missed else
            "Jump to the latest message"
        )  # fmt: skip
        self.jump_button.adjustSize()
        viewport = self.viewport().rect()
        self.jump_button.move(
            viewport.right() - self.jump_button.width() - 16,
            viewport.bottom() - self.jump_button.height() - 12,
        )
        self.jump_button.setVisible(not self._stick_to_bottom)

    def _on_model_reset(self) -> None:
        self._stick_to_bottom = True
        self._show_jump_button()

    def _on_scrollbar_value_changed(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 8
        self._show_jump_button()
        if value <= bar.minimum() + 40 and self._model.can_fetch_older():
            self._tasks.start(self._load_older(), name="messages-older")

    async def _load_older(self) -> None:
        bar = self.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        if await self._model.fetch_older():
            self.doItemsLayout()
            bar.setValue(bar.maximum() - from_bottom)

    def _on_model_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if first == 0:
            return  # an older page, above
        if self._stick_to_bottom:
            self.scrollToBottom()
        else:
            self._missed += last - first + 1
            self._show_jump_button()
