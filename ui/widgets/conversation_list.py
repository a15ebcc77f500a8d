"""The Open Conversations list (N2): a lazily loaded model and a messenger-style row delegate.

Rows stay sorted by last activity, newest first. A conversation with a new message moves to the
top with `beginMoveRows` (the view keeps selection and scroll), never with a reset. Pages of 200
rows load as the list is scrolled (`canFetchMore`/`fetchMore`), so 10,000 conversations cost
what one page costs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from services.api import ConversationKind, ConversationRow
from ui.format import format_time, row_label
from ui.roles import CONVERSATION_ID_ROLE, ROW_ROLE
from ui.tasks import Tasks
from ui.theme import Theme

__all__ = ["PAGE_SIZE", "ConversationDelegate", "ConversationListModel", "PageFetcher"]

PAGE_SIZE = 200

Index = QModelIndex | QPersistentModelIndex
PageFetcher = Callable[[int, int], Awaitable[list[ConversationRow]]]


def _key(row: ConversationRow) -> tuple[float, int]:
    return (row.last_at.timestamp() if row.last_at else 0.0, row.id)


class ConversationListModel(QAbstractListModel):
    """One inbox's open conversations, loaded a page at a time."""

    page_loaded = Signal()

    def __init__(self, *, fetch_page: PageFetcher, tasks: Tasks, parent: QWidget | None = None):
        super().__init__(parent)
        self._fetch_page = fetch_page
        self._tasks = tasks
        self._rows: list[ConversationRow] = []
        self._index: dict[int, int] = {}
        self._exhausted = False
        self._loading = False

    # --- Qt's model interface --------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row_label(row)
        if role == ROW_ROLE:
            return row
        if role == CONVERSATION_ID_ROLE:
            return row.id
        if role == Qt.ItemDataRole.AccessibleTextRole:
            unseen = f", {row.unseen} unseen" if row.unseen else ""
            last = f"{row.last_author}: {row.last_text[:80]}" if row.last_text else "No messages"
            return f"{row_label(row)}{unseen}. {last}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return row_label(row)
        return None

    def canFetchMore(self, parent: Index) -> bool:
        return not parent.isValid() and not self._exhausted and not self._loading

    def fetchMore(self, parent: Index) -> None:
        if self.canFetchMore(parent):
            self._loading = True
            self._tasks.start(self.load_more(), name="conversations-page")

    # --- loading ---------------------------------------------------------------------------

    @property
    def rows(self) -> list[ConversationRow]:
        return list(self._rows)

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    async def reload(self) -> None:
        """The first page, from scratch (start-up, another user)."""
        self._loading = True
        try:
            page = await self._fetch_page(0, PAGE_SIZE)
        finally:
            self._loading = False
        self.beginResetModel()
        self._rows = list(page)
        self._exhausted = len(page) < PAGE_SIZE
        self._reindex()
        self.endResetModel()
        self.page_loaded.emit()

    async def load_more(self) -> None:
        self._loading = True
        try:
            page = await self._fetch_page(len(self._rows), PAGE_SIZE)
        finally:
            self._loading = False
        # Rows that moved to the top shift the offsets: skip what is already here.
        fresh = [r for r in page if r.id not in self._index]
        if len(page) < PAGE_SIZE:
            self._exhausted = True
        if fresh:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self._rows.extend(fresh)
            self._reindex(first)
            self.endInsertRows()
        self.page_loaded.emit()

    # --- live updates ----------------------------------------------------------------------

    def row_of(self, conversation_id: int) -> int | None:
        return self._index.get(conversation_id)

    def conversation(self, conversation_id: int) -> ConversationRow | None:
        i = self._index.get(conversation_id)
        return None if i is None else self._rows[i]

    def upsert(self, rows: Iterable[ConversationRow]) -> None:
        """Put changed rows where their last activity says (N2): usually the top."""
        for row in rows:
            self._place(row)

    def remove(self, conversation_ids: Iterable[int]) -> None:
        for conv_id in conversation_ids:
            i = self._index.get(conv_id)
            if i is None:
                continue
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            del self._index[conv_id]
            self._reindex(i)
            self.endRemoveRows()

    def set_counts(self, by_conversation: Mapping[int, int]) -> None:
        """N3: each row shows the same count as the tab and the bubble."""
        for i, row in enumerate(self._rows):
            n = by_conversation.get(row.id, 0)
            if n != row.unseen:
                self._rows[i] = _with_unseen(row, n)
                index = self.index(i, 0)
                self.dataChanged.emit(index, index)

    def _place(self, new: ConversationRow) -> None:
        key = _key(new)
        old = self._index.get(new.id)
        target = self._target(key, skip=old)
        if old is None:
            if target == len(self._rows) and not self._exhausted:
                return  # belongs to a page not loaded yet; it comes with that page
            self.beginInsertRows(QModelIndex(), target, target)
            self._rows.insert(target, new)
            self._reindex(target)
            self.endInsertRows()
            return
        self._rows[old] = new
        if target != old:
            # beginMoveRows wants the destination in the *old* numbering.
            dest = target if target < old else target + 1
            self.beginMoveRows(QModelIndex(), old, old, QModelIndex(), dest)
            del self._rows[old]
            self._rows.insert(target, new)
            self._reindex(min(old, target), max(old, target) + 1)
            self.endMoveRows()
        index = self.index(target, 0)
        self.dataChanged.emit(index, index)

    def _target(self, key: tuple[float, int], *, skip: int | None) -> int:
        # New activity lands at or near the top: a scan from the top stops at once.
        pos = 0
        for j, row in enumerate(self._rows):
            if j == skip:
                continue
            if _key(row) < key:
                return pos
            pos += 1
        return pos

    def _reindex(self, start: int = 0, stop: int | None = None) -> None:
        if start == 0 and stop is None:
            self._index = {}
        end = len(self._rows) if stop is None else stop
        for i in range(start, end):
            self._index[self._rows[i].id] = i


def _with_unseen(row: ConversationRow, n: int) -> ConversationRow:
    return ConversationRow(
        id=row.id,
        kind=row.kind,
        item_number=row.item_number,
        title=row.title,
        last_text=row.last_text,
        last_author=row.last_author,
        last_at=row.last_at,
        unseen=n,
    )


class ConversationDelegate(QStyledItemDelegate):
    """Avatar, title, time, snippet and the blue unseen pill (N2) — painted, never rich text."""

    def __init__(
        self, *, theme: Theme, now: Callable[[], datetime], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.theme = theme
        self._now = now

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        fm = QFontMetrics(option.font)
        return QSize(260, max(60, fm.height() * 2 + 28))

    def _kind_colour(self, kind: ConversationKind) -> QColor:
        if kind == ConversationKind.EXTERNAL:
            return self.theme.external
        if kind == ConversationKind.DIRECT:
            return self.theme.accent
        return self.theme.internal

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row = index.data(ROW_ROLE)
        if not isinstance(row, ConversationRow):
            return
        t = self.theme
        rect: QRect = option.rect
        state = option.state
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, t.selection)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect, t.alt_base)
        painter.setPen(t.separator)
        painter.drawLine(rect.left() + 64, rect.bottom(), rect.right(), rect.bottom())

        base_font = QFont(option.font)
        fm = QFontMetrics(base_font)
        pad = 12
        avatar = 40
        ax, ay = rect.left() + pad, rect.top() + (rect.height() - avatar) // 2
        colour = QColor(self._kind_colour(row.kind))
        fill = QColor(colour)
        fill.setAlpha(40 if not t.dark else 70)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawEllipse(QRectF(ax, ay, avatar, avatar))
        small = QFont(base_font)
        small.setPointSizeF(max(7.0, base_font.pointSizeF() * 0.8))
        small.setBold(True)
        painter.setFont(small)
        painter.setPen(colour)
        badge = f"#{row.item_number}" if row.item_number is not None else _initials(row.title)
        painter.drawText(
            QRect(ax, ay, avatar, avatar),
            Qt.AlignmentFlag.AlignCenter,
            QFontMetrics(small).elidedText(badge, Qt.TextElideMode.ElideRight, avatar - 2),
        )

        left = ax + avatar + pad
        right = rect.right() - pad
        line1 = rect.top() + (rect.height() - 2 * fm.height() - 6) // 2
        line2 = line1 + fm.height() + 6

        time_font = QFont(base_font)
        time_font.setPointSizeF(max(7.0, base_font.pointSizeF() * 0.85))
        when = format_time(row.last_at, now=self._now())
        tfm = QFontMetrics(time_font)
        time_w = tfm.horizontalAdvance(when)
        painter.setFont(time_font)
        painter.setPen(t.accent if row.unseen else t.muted)
        painter.drawText(
            QRect(right - time_w, line1, time_w, fm.height()),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            when,
        )

        title_font = QFont(base_font)
        title_font.setBold(True)
        if not row.unseen:
            title_font.setWeight(QFont.Weight.DemiBold)
        painter.setFont(title_font)
        painter.setPen(t.text)
        title_w = right - time_w - 8 - left
        painter.drawText(
            QRect(left, line1, title_w, fm.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            QFontMetrics(title_font).elidedText(row.title, Qt.TextElideMode.ElideRight, title_w),
        )

        pill_w = 0
        if row.unseen:
            text = "99+" if row.unseen > 99 else str(row.unseen)
            pill_font = QFont(small)
            pfm = QFontMetrics(pill_font)
            ph = pfm.height() + 4
            pill_w = max(ph, pfm.horizontalAdvance(text) + 12)
            pill = QRectF(right - pill_w, line2 + (fm.height() - ph) / 2, pill_w, ph)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(t.accent_fill)
            painter.drawRoundedRect(pill, ph / 2, ph / 2)
            painter.setPen(t.on_accent)
            painter.setFont(pill_font)
            painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
            pill_w += 8

        snippet = " ".join(row.last_text.split())
        snippet = f"{row.last_author}: {snippet}" if row.last_author else snippet
        snippet = snippet or "No messages yet"
        painter.setFont(base_font)
        painter.setPen(t.text if row.unseen else t.muted)
        snip_w = right - pill_w - left
        painter.drawText(
            QRect(left, line2, snip_w, fm.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            fm.elidedText(snippet, Qt.TextElideMode.ElideRight, snip_w),
        )
        painter.restore()


def _initials(name: str) -> str:
    parts = [p for p in name.replace("&", " ").split() if p[:1].isalnum()]
    return "".join(p[0].upper() for p in parts[:2]) or "?"
