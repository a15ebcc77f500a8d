"""Light and dark looks (D6): one palette for Qt's own widgets plus the few colours our
delegates paint with. Follows the system unless DESKBELL_THEME says light or dark."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["DARK", "LIGHT", "Theme", "apply_theme", "wants_dark"]


@dataclass(frozen=True, slots=True)
class Theme:
    dark: bool
    window: QColor
    base: QColor
    alt_base: QColor
    text: QColor
    muted: QColor
    accent: QColor  # the blue of unseen counts (N2) and of selection
    selection: QColor
    separator: QColor
    bubble_mine: QColor
    bubble_other: QColor
    internal: QColor  # team-only conversations
    external: QColor  # the customer sees it

    def css(self, color: QColor) -> str:
        return color.name(QColor.NameFormat.HexArgb)


LIGHT = Theme(
    dark=False,
    window=QColor("#f3f4f6"),
    base=QColor("#ffffff"),
    alt_base=QColor("#f8fafc"),
    text=QColor("#111827"),
    muted=QColor("#6b7280"),
    accent=QColor("#2563eb"),
    selection=QColor("#dbeafe"),
    separator=QColor("#e5e7eb"),
    bubble_mine=QColor("#dbeafe"),
    bubble_other=QColor("#f1f5f9"),
    internal=QColor("#b45309"),
    external=QColor("#be123c"),
)

DARK = Theme(
    dark=True,
    window=QColor("#17191d"),
    base=QColor("#1f2227"),
    alt_base=QColor("#262a30"),
    text=QColor("#e5e7eb"),
    muted=QColor("#9ca3af"),
    accent=QColor("#3b82f6"),
    selection=QColor("#1e3a5f"),
    separator=QColor("#30343b"),
    bubble_mine=QColor("#1e3a5f"),
    bubble_other=QColor("#2b2f36"),
    internal=QColor("#f59e0b"),
    external=QColor("#fb7185"),
)


def wants_dark(app: QGuiApplication) -> bool:
    chosen = os.environ.get("DESKBELL_THEME", "").strip().lower()
    if chosen in ("dark", "light"):
        return chosen == "dark"
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, *, dark: bool | None = None) -> Theme:
    """Fusion with our palette: looks the same on every OS and reads well in both modes."""
    theme = DARK if (wants_dark(app) if dark is None else dark) else LIGHT
    app.setStyle("Fusion")
    pal = QPalette()
    role = QPalette.ColorRole
    pal.setColor(role.Window, theme.window)
    pal.setColor(role.WindowText, theme.text)
    pal.setColor(role.Base, theme.base)
    pal.setColor(role.AlternateBase, theme.alt_base)
    pal.setColor(role.Text, theme.text)
    pal.setColor(role.Button, theme.base)
    pal.setColor(role.ButtonText, theme.text)
    pal.setColor(role.ToolTipBase, theme.base)
    pal.setColor(role.ToolTipText, theme.text)
    pal.setColor(role.PlaceholderText, theme.muted)
    pal.setColor(role.Highlight, theme.accent)
    pal.setColor(role.HighlightedText, QColor("#ffffff"))
    pal.setColor(role.Link, theme.accent)
    pal.setColor(role.Mid, theme.separator)
    pal.setColor(role.Midlight, theme.separator)
    pal.setColor(QPalette.ColorGroup.Disabled, role.Text, theme.muted)
    pal.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, theme.muted)
    pal.setColor(QPalette.ColorGroup.Disabled, role.WindowText, theme.muted)
    app.setPalette(pal)
    return theme
