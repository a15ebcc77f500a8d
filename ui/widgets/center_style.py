"""The Messaging Center's look (M1-M6) in light and dark: one style sheet built from the
theme the application runs with, the status colours of the email log, and the painter of
its status pills.

The theme is read back from the palette `ui.theme.apply_theme` set, so the window needs no
extra argument and follows a switch between light and dark while it is open.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import QLabel, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from ui.theme import DARK, LIGHT, Theme

__all__ = [
    "StatusPillDelegate",
    "caption",
    "status_colors",
    "style_sheet",
    "text_color",
    "theme_for",
]

# Text and fill of each status, per look; chosen to keep 4.5:1 contrast on their fill.
_LIGHT_STATUS = {
    "sent": ("#166534", "#dcfce7"),
    "failed": ("#b91c1c", "#fee2e2"),
    "retrying": ("#92400e", "#fef3c7"),
    "queued": ("#92400e", "#fef3c7"),
    "sending": ("#92400e", "#fef3c7"),
    "suppressed": ("#4b5563", "#e5e7eb"),
    "ignored": ("#4b5563", "#e5e7eb"),
    "received": ("#1d4ed8", "#dbeafe"),
}
_DARK_STATUS = {
    "sent": ("#86efac", "#14532d"),
    "failed": ("#fca5a5", "#7f1d1d"),
    "retrying": ("#fcd34d", "#713f12"),
    "queued": ("#fcd34d", "#713f12"),
    "sending": ("#fcd34d", "#713f12"),
    "suppressed": ("#d1d5db", "#374151"),
    "ignored": ("#d1d5db", "#374151"),
    "received": ("#93c5fd", "#1e3a8a"),
}


def theme_for(widget: QWidget | None = None, *, palette: QPalette | None = None) -> Theme:
    """The look in use: dark when the window colour is dark."""
    if palette is not None:
        pal = palette
    else:
        pal = widget.palette() if widget is not None else QGuiApplication.palette()
    return DARK if pal.color(QPalette.ColorRole.Window).lightness() < 128 else LIGHT


def caption(text: str) -> QLabel:
    """A muted, semi-bold caption over a field (the style sheet's #mcCaption)."""
    label = QLabel(text)
    label.setObjectName("mcCaption")
    return label


def status_colors(status: str, theme: Theme) -> tuple[QColor, QColor]:
    """(text, fill) of a status pill; unknown statuses read as neutral."""
    table = _DARK_STATUS if theme.dark else _LIGHT_STATUS
    text, fill = table.get(status, table["suppressed"])
    return QColor(text), QColor(fill)


def text_color(*, error: bool, theme: Theme) -> str:
    """The colour of a one-line result: red for a refusal, green for success."""
    if theme.dark:
        return "#fca5a5" if error else "#86efac"
    return "#b91c1c" if error else "#166534"


class StatusPillDelegate(QStyledItemDelegate):
    """Paints a status as a rounded, coloured pill; the text stays the model's own."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        status = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        # The row background and selection first, as the view would draw them.
        self.initStyleOption(option, index)
        option.text = ""
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        if not status:
            return
        theme = theme_for(palette=option.palette)
        fg, bg = status_colors(status, theme)
        font = QFont(option.font)
        font.setPointSizeF(max(font.pointSizeF() * 0.9, 7.0))
        font.setWeight(QFont.Weight.DemiBold)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(status) + 18
        height = metrics.height() + 6
        rect = option.rect
        pill = QRectF(rect.left() + 6, rect.top() + (rect.height() - height) / 2, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(bg)
        painter.drawRoundedRect(pill, height / 2, height / 2)
        painter.setPen(fg)
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, status)
        painter.restore()


def style_sheet(theme: Theme) -> str:
    """The window's style sheet: rounded fields and pills, the accent for what is chosen."""
    c = {
        "window": theme.window.name(),
        "base": theme.base.name(),
        "alt": theme.alt_base.name(),
        "text": theme.text.name(),
        "muted": theme.muted.name(),
        "accent": theme.accent.name(),
        "fill": theme.accent_fill.name(),
        "on_fill": theme.on_accent.name(),
        "accent_hover": theme.accent_fill.lighter(112).name(),
        "sel": theme.selection.name(),
        "sep": theme.separator.name(),
        "hover": (theme.alt_base.lighter(120) if theme.dark else theme.separator).name(),
    }
    return """
#mcSidebarPane {{ background: {base}; border-right: 1px solid {sep}; }}
#mcSidebarTitle {{ font-size: 14pt; font-weight: 700; color: {text}; }}
#mcSidebarSubtitle {{ color: {muted}; }}
QListWidget#mcSidebar {{ background: {base}; border: none; outline: 0; }}
QListWidget#mcSidebar::item {{
    padding: 9px 12px; margin: 2px 0; border-radius: 8px; color: {text};
}}
QListWidget#mcSidebar::item:hover {{ background: {hover}; }}
QListWidget#mcSidebar::item:selected {{
    background: {fill}; color: {on_fill}; font-weight: 600;
}}
#mcSectionTitle {{ font-size: 17pt; font-weight: 700; color: {text}; }}
#mcSectionDescription {{ color: {muted}; }}
#mcCaption {{ color: {muted}; font-weight: 600; }}
#mcHint {{ color: {muted}; }}
#mcEditorTitle {{ font-size: 12pt; color: {text}; }}
#mcPreviewSubject {{
    background: {alt}; border: 1px solid {sep}; border-radius: 6px; padding: 6px 8px;
    font-weight: 600;
}}
#mcEmpty {{ color: {muted}; padding: 12px; }}
QListWidget#mcList {{
    background: {base}; border: 1px solid {sep}; border-radius: 8px; padding: 4px; outline: 0;
}}
QListWidget#mcList::item {{ padding: 7px 8px; border-radius: 6px; color: {text}; }}
QListWidget#mcList::item:hover {{ background: {hover}; }}
QListWidget#mcList::item:selected {{ background: {sel}; color: {text}; }}
QLineEdit, QPlainTextEdit, QTextBrowser {{
    background: {base}; color: {text}; border: 1px solid {sep}; border-radius: 6px;
    padding: 4px 6px; selection-background-color: {fill}; selection-color: {on_fill};
}}
QTextBrowser#mcHtmlPreview {{ background: #ffffff; color: #111827; }}
QLineEdit:focus, QPlainTextEdit:focus {{ border: 1px solid {accent}; }}
QLineEdit:disabled {{ color: {muted}; background: {alt}; }}
QPushButton {{
    background: {base}; color: {text}; border: 1px solid {sep}; border-radius: 14px;
    padding: 5px 16px; min-height: 18px;
}}
QPushButton:hover {{ border-color: {accent}; }}
QPushButton:disabled {{ color: {muted}; background: {alt}; }}
QPushButton#mcPrimary {{
    background: {fill}; color: {on_fill}; border: 1px solid {fill}; font-weight: 600;
}}
QPushButton#mcPrimary:hover {{ background: {accent_hover}; }}
QPushButton#mcPrimary:disabled {{ background: {sep}; border-color: {sep}; color: {muted}; }}
QTabWidget::pane {{ border: 1px solid {sep}; border-radius: 6px; top: -1px; }}
QTabBar::tab {{
    background: transparent; color: {muted}; padding: 6px 14px; border: none;
    border-bottom: 2px solid transparent;
}}
QTabBar::tab:selected {{ color: {text}; border-bottom: 2px solid {accent}; font-weight: 600; }}
QTableView {{
    background: {base}; alternate-background-color: {alt}; color: {text};
    border: 1px solid {sep}; border-radius: 8px; gridline-color: transparent;
    selection-background-color: {sel}; selection-color: {text}; outline: 0;
}}
QHeaderView::section {{
    background: {base}; color: {muted}; font-weight: 600; padding: 6px 8px;
    border: none; border-bottom: 1px solid {sep};
}}
QSplitter::handle {{ background: transparent; }}
""".format(**c)
