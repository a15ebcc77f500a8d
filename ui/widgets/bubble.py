"""The tray icon's green count bubble (D2, N3): drawn for every icon size and screen density."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap, QTransform

from ui.format import bubble_text
from ui.icons import APP_ICON_SIZES, app_icon_pixmap

__all__ = ["BUBBLE_GREEN", "SMALL_ICON", "render_bubble", "tray_icon"]

# Dark enough that white bold digits stay readable on it (contrast ≈ 3.6:1), bright enough to
# read as "new" against the blue icon and against dark and light panels alike.
BUBBLE_GREEN = QColor("#1f9e44")
_OUTLINE_LIGHT = QColor("#ffffff")
_OUTLINE_DARK = QColor(0, 0, 0, 110)
# Under this many device pixels the bubble takes most of the icon so its number stays readable
# (a 100 % tray icon is 16 px); under TINY_ICON there is no room for digits: a plain dot.
SMALL_ICON = 22
TINY_ICON = 12


def _bubble_height(pixels: int) -> float:
    """Bubble height as a share of the icon: larger on small icons so digits stay legible."""
    if pixels < SMALL_ICON:
        return 0.78
    if pixels <= 26:
        return 0.62
    if pixels <= 48:
        return 0.54
    return 0.46


def _digits_path(text: str, *, height: float) -> QPainterPath:
    font = QFont("DejaVu Sans")
    font.setBold(True)
    # Small bubbles: the digits fill more of them (10 px digits in a 12 px bubble at 16 px).
    font.setPixelSize(max(6, round(height * (0.86 if height < 14 else 0.8))))
    # Tight letters: on a 22 px icon every pixel of width counts.
    font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 92)
    path = QPainterPath()
    path.addText(QPointF(0, 0), font, text)
    return path


def render_bubble(
    *, size: int, count: int, dpr: float = 1.0, base: QPixmap | None = None
) -> QPixmap:
    """The icon at `size` logical pixels (size × dpr device pixels) with the count bubble."""
    pixels = max(1, round(size * dpr))
    canvas = QPixmap(pixels, pixels)
    canvas.fill(Qt.GlobalColor.transparent)
    source = base if base is not None and not base.isNull() else app_icon_pixmap(size=size, dpr=dpr)
    painter = QPainter(canvas)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawPixmap(QRectF(0, 0, pixels, pixels), source, QRectF(source.rect()))
    text = bubble_text(count)
    if text:
        _paint_bubble(painter, text=text, pixels=pixels)
    painter.end()
    canvas.setDevicePixelRatio(dpr)
    return canvas


def _paint_bubble(painter: QPainter, *, text: str, pixels: int) -> None:
    # Sized in device pixels: a 16 px icon at 200 % has room for digits, one at 100 % does not.
    height = pixels * _bubble_height(pixels)
    ring = max(1.0, pixels / 24)
    digits: QPainterPath | None = None
    width = height
    if pixels >= TINY_ICON:
        digits = _digits_path(text, height=height)
        glyphs = digits.boundingRect()
        pad = height * (0.08 if pixels < SMALL_ICON else 0.2)
        width = min(float(pixels), max(height, glyphs.width() + 2 * pad + 2 * ring))
        room = width - 2 * pad - 2 * ring
        if glyphs.width() > room:
            # "99+" on a small icon: squeeze horizontally rather than clip.
            digits = QTransform().scale(room / glyphs.width(), 1.0).map(digits)
    outer = QRectF(pixels - width, 0, width, height)
    radius = height / 2
    path = QPainterPath()
    path.addRoundedRect(outer, radius, radius)
    painter.fillPath(path, _OUTLINE_LIGHT)
    inner = outer.adjusted(ring, ring, -ring, -ring)
    inner_path = QPainterPath()
    inner_path.addRoundedRect(inner, radius - ring, radius - ring)
    painter.fillPath(inner_path, BUBBLE_GREEN)
    if pixels >= 32:
        # A hairline outside the white ring keeps the bubble's edge on white panels.
        painter.setPen(QPen(_OUTLINE_DARK, max(1.0, pixels / 96)))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(outer.adjusted(0.5, 0.5, -0.5, -0.5), radius, radius)
    if digits is not None:
        glyphs = digits.boundingRect()
        offset = inner.center() - glyphs.center()
        painter.fillPath(digits.translated(offset), QColor("#ffffff"))


def tray_icon(
    *,
    count: int,
    base: QIcon | None = None,
    sizes: Sequence[int] = APP_ICON_SIZES,
    dpr: float = 1.0,
) -> QIcon:
    """A QIcon holding one bubbled pixmap per size, so each desktop picks a crisp one."""
    icon = QIcon()
    for size in sizes:
        if base is None or base.isNull():
            source = app_icon_pixmap(size=size, dpr=dpr)
        else:
            source = base.pixmap(QSize(size, size), dpr)
        icon.addPixmap(render_bubble(size=size, count=count, dpr=dpr, base=source))
    return icon
