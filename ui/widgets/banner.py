"""The in-app banner (D3): slim bars at the top of a pane, one per conversation.

The bars take their own room in the pane's layout and push its content down: drawn over the
conversation, they hid its top message (the first screenshots showed it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.format import first_words

__all__ = ["AUTO_HIDE_MS", "BannerArea", "BannerBar"]

AUTO_HIDE_MS = 8000


def _plain_label(parent: QWidget, name: str) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    # People's text is never markup (SPEC "Plain text; never interpreted as HTML").
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
    return label


class BannerBar(QFrame):
    """One conversation's bar: author, first words, Open and ×."""

    clicked = Signal(str)
    dismissed = Signal(str)

    def __init__(self, key: str, parent: QWidget, *, auto_hide_ms: int = AUTO_HIDE_MS) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("deskbellBanner")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        # palette(...) roles keep it readable in light and dark themes; the accent is our blue.
        self.setStyleSheet(
            "#deskbellBanner { background: palette(base); border: 1px solid palette(mid);"
            " border-left: 4px solid #2f6fde; border-radius: 6px; }"
            "#deskbellBannerTitle { font-weight: bold; }"
        )
        self.title = _plain_label(self, "deskbellBannerTitle")
        self.body = _plain_label(self, "deskbellBannerBody")
        self.open_button = QPushButton(self.tr("Open"), self)
        self.open_button.setAccessibleName(self.tr("Open conversation"))
        self.close_button = QPushButton("×", self)
        self.close_button.setFlat(True)
        self.close_button.setFixedWidth(28)
        self.close_button.setAccessibleName(self.tr("Dismiss notification"))
        texts = QVBoxLayout()
        texts.setSpacing(0)
        texts.addWidget(self.title)
        texts.addWidget(self.body)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 4, 4)
        row.addLayout(texts, 1)
        row.addWidget(self.open_button)
        row.addWidget(self.close_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(auto_hide_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.close_button.clicked.connect(self._on_close_clicked)

    def update_text(self, *, title: str, body: str) -> None:
        self.title.setText(first_words(title, limit=60))
        self.body.setText(first_words(body))
        self.setAccessibleName(f"{self.title.text()}: {self.body.text()}")
        self._timer.start()

    def mouseReleaseEvent(self, event: object) -> None:
        self.clicked.emit(self.key)

    def _on_open_clicked(self) -> None:
        self.clicked.emit(self.key)

    def _on_close_clicked(self) -> None:
        self.dismissed.emit(self.key)

    def _on_timer_timeout(self) -> None:
        self.dismissed.emit(self.key)


class BannerArea(QWidget):
    """Stacks the bars at the top of `parent`'s box layout, pushing what follows down.

    A parent without a layout gets a vertical one (the area, then a stretch); its other
    children keep their own geometry.
    """

    clicked = Signal(str)

    def __init__(self, parent: QWidget, *, auto_hide_ms: int = AUTO_HIDE_MS) -> None:
        super().__init__(parent)
        self.setObjectName("deskbellBannerArea")
        self._auto_hide_ms = auto_hide_ms
        self._bars: dict[str, BannerBar] = {}
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 6, 8, 2)
        self._layout.setSpacing(4)
        host = parent.layout()
        if host is None:
            host = QVBoxLayout(parent)
            host.setContentsMargins(0, 0, 0, 0)
            host.addStretch(1)
        if not isinstance(host, QBoxLayout):
            raise TypeError("BannerArea needs a parent with a box layout (or none)")
        host.insertWidget(0, self)
        self.hide()

    def bar(self, key: str) -> BannerBar | None:
        return self._bars.get(key)

    def keys(self) -> list[str]:
        return list(self._bars)

    def show_banner(self, *, key: str, title: str, body: str) -> BannerBar:
        """Show or update in place the bar of `key` (N5: one per conversation)."""
        bar = self._bars.get(key)
        if bar is None:
            bar = BannerBar(key, self, auto_hide_ms=self._auto_hide_ms)
            bar.clicked.connect(self._on_bar_clicked)
            bar.dismissed.connect(self.close_banner)
            self._bars[key] = bar
            self._layout.insertWidget(0, bar)
        bar.update_text(title=title, body=body)
        self._relayout()
        return bar

    def close_banner(self, key: str) -> None:
        bar = self._bars.pop(key, None)
        if bar is None:
            return
        self._layout.removeWidget(bar)
        bar.hide()
        bar.deleteLater()
        self._relayout()

    def _on_bar_clicked(self, key: str) -> None:
        self.clicked.emit(key)
        self.close_banner(key)

    def _relayout(self) -> None:
        self.setVisible(bool(self._bars))
        parent = self.parentWidget()
        host = parent.layout() if parent is not None else None
        if host is not None:
            # Place it now rather than on the next event loop turn: callers read geometry.
            host.activate()
