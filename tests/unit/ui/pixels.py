"""Pixel helpers shared by the bubble tests."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage

__all__ = ["count_green", "is_bubble_green"]


def is_bubble_green(color: QColor) -> bool:
    """Saturated green, as the bubble's fill (not the icon's blue, not white digits)."""
    return (
        color.alpha() > 200
        and color.green() > 120
        and color.green() > color.red() + 60
        and color.green() > color.blue() + 60
    )


def count_green(image: QImage, *, x0: int, y0: int, x1: int, y1: int) -> int:
    return sum(
        1
        for y in range(max(0, y0), min(image.height(), y1))
        for x in range(max(0, x0), min(image.width(), x1))
        if is_bubble_green(image.pixelColor(x, y))
    )
