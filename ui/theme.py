"""Light and dark looks (D6): one palette for Qt's own widgets plus the few colours our
delegates paint with. Follows the system unless DESKBELL_THEME says light or dark."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["DARK", "LIGHT", "Theme", "apply_theme", "contrast_ratio", "wants_dark"]


@dataclass(frozen=True, slots=True)
class Theme:
    dark: bool
    window: QColor
    base: QColor
    alt_base: QColor
    text: QColor
    muted: QColor
    accent: QColor  # the blue of unseen counts (N2) and links, as text or a line
    accent_fill: QColor  # the same blue behind text: buttons, pills, highlighted rows
    on_accent: QColor  # text on accent_fill
    selection: QColor
    separator: QColor
    bubble_mine: QColor
    bubble_other: QColor
    internal: QColor  # team-only conversations
    external: QColor  # the customer sees it
    on_internal: QColor  # text on an internal-coloured button
    on_external: QColor  # text on an external-coloured button

    def css(self, color: QColor) -> str:
        return color.name(QColor.NameFormat.HexArgb)

    def text_pairs(self) -> dict[str, tuple[QColor, QColor]]:
        """Every (text, background) pair the UI paints, by what it is (D6: WCAG AA)."""
        return {
            "text": (self.text, self.base),
            "text on the window": (self.text, self.window),
            "text on a hovered row": (self.text, self.alt_base),
            "muted": (self.muted, self.base),
            "muted on the window": (self.muted, self.window),
            "muted on a hovered row": (self.muted, self.alt_base),
            "accent": (self.accent, self.base),
            "accent on the window": (self.accent, self.window),
            "text on a selected row": (self.text, self.selection),
            "muted on a selected row": (self.muted, self.selection),
            "accent on a selected row": (self.accent, self.selection),
            "text in my bubble": (self.text, self.bubble_mine),
            "my name in my bubble": (self.accent, self.bubble_mine),
            "time in my bubble": (self.muted, self.bubble_mine),
            "text in their bubble": (self.text, self.bubble_other),
            "time in their bubble": (self.muted, self.bubble_other),
            "internal label": (self.internal, self.base),
            "external label": (self.external, self.base),
            "send to team": (self.on_internal, self.internal),
            "send to customer": (self.on_external, self.external),
            "unseen pill": (self.on_accent, self.accent_fill),
            "new item button": (self.on_accent, self.accent_fill),
            "highlighted row": (self.on_accent, self.accent_fill),
        }


def contrast_ratio(foreground: QColor, background: QColor) -> float:
    """WCAG 2 contrast ratio of two opaque colours (1 to 21; AA asks 4.5 for text)."""

    def luminance(color: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(color.redF())
            + 0.7152 * channel(color.greenF())
            + 0.0722 * channel(color.blueF())
        )

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


LIGHT = Theme(
    dark=False,
    window=QColor("#f3f4f6"),
    base=QColor("#ffffff"),
    alt_base=QColor("#f8fafc"),
    text=QColor("#111827"),
    muted=QColor("#5b6170"),
    accent=QColor("#1d4ed8"),
    accent_fill=QColor("#1d4ed8"),
    on_accent=QColor("#ffffff"),
    selection=QColor("#dbeafe"),
    separator=QColor("#e5e7eb"),
    bubble_mine=QColor("#dbeafe"),
    bubble_other=QColor("#f1f5f9"),
    internal=QColor("#b45309"),
    external=QColor("#be123c"),
    on_internal=QColor("#ffffff"),
    on_external=QColor("#ffffff"),
)

DARK = Theme(
    dark=True,
    window=QColor("#17191d"),
    base=QColor("#1f2227"),
    alt_base=QColor("#262a30"),
    text=QColor("#e5e7eb"),
    muted=QColor("#a8afba"),
    accent=QColor("#7cb4fb"),
    accent_fill=QColor("#2563eb"),
    on_accent=QColor("#ffffff"),
    selection=QColor("#1e3a5f"),
    separator=QColor("#30343b"),
    bubble_mine=QColor("#1e3a5f"),
    bubble_other=QColor("#2b2f36"),
    internal=QColor("#f59e0b"),
    external=QColor("#fb7185"),
    # Amber and rose are light in the dark look: white on them read at 2.1:1 and 2.7:1.
    on_internal=QColor("#111827"),
    on_external=QColor("#111827"),
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
    pal.setColor(role.Highlight, theme.accent_fill)
    pal.setColor(role.HighlightedText, theme.on_accent)
    pal.setColor(role.Link, theme.accent)
    pal.setColor(role.Mid, theme.separator)
    pal.setColor(role.Midlight, theme.separator)
    pal.setColor(QPalette.ColorGroup.Disabled, role.Text, theme.muted)
    pal.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, theme.muted)
    pal.setColor(QPalette.ColorGroup.Disabled, role.WindowText, theme.muted)
    app.setPalette(pal)
    return theme
