"""Deskbell's icons, loaded from the `resources` package (works from a wheel or a source tree).

`python -m ui.icons` re-renders the app icon PNGs from `resources/icons/deskbell.svg`.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

__all__ = [
    "APP_ICON_SIZES",
    "STATUS_ICONS",
    "app_icon",
    "app_icon_file",
    "app_icon_pixmap",
    "render_app_pngs",
    "status_icon",
]

APP_ICON_SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256)
STATUS_ICONS = ("sent", "seen", "emailed", "failed", "queued", "internal", "external")


def _icon_bytes(filename: str) -> bytes:
    return files("resources").joinpath("icons", filename).read_bytes()


@cache
def _renderer(filename: str) -> QSvgRenderer:
    renderer = QSvgRenderer(QByteArray(_icon_bytes(filename)))
    if not renderer.isValid():
        raise ValueError(f"resources/icons/{filename} is not a valid SVG")
    return renderer


def _render_svg(filename: str, pixels: int) -> QImage:
    image = QImage(pixels, pixels, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    _renderer(filename).render(painter, QRectF(0, 0, pixels, pixels))
    painter.end()
    return image


def app_icon_pixmap(*, size: int, dpr: float = 1.0) -> QPixmap:
    """The app icon drawn straight from the SVG at `size` logical pixels, sharp at any `dpr`."""
    pixmap = QPixmap.fromImage(_render_svg("deskbell.svg", max(1, round(size * dpr))))
    pixmap.setDevicePixelRatio(dpr)
    return pixmap


def app_icon_file(size: int = 64) -> Path:
    """A committed PNG of the app icon as a real file (for notification daemons)."""
    if size not in APP_ICON_SIZES:
        raise ValueError(f"no {size} px icon; sizes: {APP_ICON_SIZES}")
    return Path(str(files("resources").joinpath("icons", f"deskbell-{size}.png")))


def app_icon() -> QIcon:
    """The Deskbell icon: the committed PNGs for the usual sizes, the SVG for anything else."""
    icon = QIcon()
    for size in APP_ICON_SIZES:
        pixmap = QPixmap()
        pixmap.loadFromData(_icon_bytes(f"deskbell-{size}.png"), "PNG")
        icon.addPixmap(pixmap)
    return icon


def status_icon(name: str, *, color: QColor | None = None) -> QIcon:
    """A status-row icon (`STATUS_ICONS`); `color` recolours its every painted pixel."""
    if name not in STATUS_ICONS:
        raise ValueError(f"unknown status icon {name!r}; known: {', '.join(STATUS_ICONS)}")
    icon = QIcon()
    # 16 and 32 cover 100 % and 200 % scaling; QIcon scales between them for 125–150 %.
    for pixels in (16, 24, 32, 48):
        image = _render_svg(f"{name}.svg", pixels)
        if color is not None:
            painter = QPainter(image)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
            painter.fillRect(image.rect(), color)
            painter.end()
        icon.addPixmap(QPixmap.fromImage(image))
    return icon


def render_app_pngs(*, folder: Path, sizes: tuple[int, ...] = APP_ICON_SIZES) -> list[Path]:
    """Write deskbell-<size>.png beside the SVG (for installers and desktops without SVG)."""
    written = []
    for size in sizes:
        out = folder / f"deskbell-{size}.png"
        if not _render_svg("deskbell.svg", size).save(str(out)):
            raise OSError(f"cannot write {out}")
        written.append(out)
    return written


def _main() -> None:
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([])
    folder = Path(str(files("resources").joinpath("icons")))
    for path in render_app_pngs(folder=folder):
        print(path)
    app.quit()


if __name__ == "__main__":
    _main()
