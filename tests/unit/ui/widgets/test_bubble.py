"""D2, N3, N7: the tray bubble, the window title and the badge."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QApplication

from tests.unit.ui.pixels import count_green
from ui.format import bubble_text, window_title
from ui.icons import STATUS_ICONS, app_icon, status_icon
from ui.platform.badge import set_app_badge
from ui.widgets.bubble import render_bubble, tray_icon


@pytest.mark.parametrize(
    ("count", "text"), [(0, ""), (-3, ""), (1, "1"), (42, "42"), (99, "99"), (100, "99+")]
)
def test_d2_bubble_text(count: int, text: str) -> None:
    assert bubble_text(count) == text


def _image(pixmap: QPixmap) -> QImage:
    return pixmap.toImage().convertToFormat(QImage.Format.Format_ARGB32)


@pytest.mark.parametrize("size", [16, 20, 22, 24, 32, 48, 64, 128, 256])
@pytest.mark.parametrize("dpr", [1.0, 1.25, 1.5, 2.0])
def test_d2_bubble_drawn_top_right_for_every_size_and_density(
    qapp: QApplication, size: int, dpr: float
) -> None:
    pixmap = render_bubble(size=size, count=7, dpr=dpr)
    pixels = round(size * dpr)
    assert pixmap.width() == pixels
    assert pixmap.devicePixelRatio() == pytest.approx(dpr)
    image = _image(pixmap)
    half = pixels // 2
    top_right = count_green(image, x0=half, y0=0, x1=pixels, y1=half)
    bottom_left = count_green(image, x0=0, y0=half, x1=half, y1=pixels)
    assert top_right > pixels * pixels * 0.08
    if pixels >= 22:
        assert bottom_left == 0
    else:  # small icons: the bubble spans the top, for a readable number; the bell shows below
        low = round(pixels * 0.8)
        assert count_green(image, x0=0, y0=low, x1=pixels, y1=pixels) == 0


@pytest.mark.parametrize("size", [16, 22, 48])
def test_d2_no_bubble_at_zero(qapp: QApplication, size: int) -> None:
    image = _image(render_bubble(size=size, count=0, dpr=1.5))
    assert count_green(image, x0=0, y0=0, x1=image.width(), y1=image.height()) == 0


@pytest.mark.parametrize(
    ("size", "dpr"), [(16, 1.0), (22, 1.0), (24, 1.0), (16, 1.5), (32, 1.25), (64, 2.0)]
)
def test_d2_the_number_is_drawn_at_every_size(qapp: QApplication, size: int, dpr: float) -> None:
    """Different counts give different bubbles: the digits themselves are there."""
    seven = _image(render_bubble(size=size, count=7, dpr=dpr))
    eight = _image(render_bubble(size=size, count=8, dpr=dpr))
    many = _image(render_bubble(size=size, count=120, dpr=dpr))
    assert seven != eight
    assert seven != many


@pytest.mark.parametrize("count", [7, 42])
def test_d2_a_16_px_icon_shows_a_readable_number(qapp: QApplication, count: int) -> None:
    """At 16 device pixels (a 100 % tray) the count is a number, not a dot: the bubble covers
    most of the icon and its digits are white strokes on green."""
    image = _image(render_bubble(size=16, count=count))
    other = _image(render_bubble(size=16, count=count + 1))
    assert image != other
    assert count_green(image, x0=0, y0=0, x1=16, y1=16) > 40
    white = sum(
        1
        for y in range(16)
        for x in range(16)
        if (c := image.pixelColor(x, y)).red() > 200 and c.green() > 200 and c.blue() > 200
        and any(
            count_green(image, x0=x + dx, y0=y, x1=x + dx + 1, y1=y + 1)
            for dx in (-2, 2)
        )
    )  # fmt: skip
    assert white >= 6  # digit strokes between green, not only the white ring


def test_d2_99_plus_is_wider_than_one_digit(qapp: QApplication) -> None:
    def green_columns(count: int) -> int:
        image = _image(render_bubble(size=64, count=count))
        return sum(
            1
            for x in range(image.width())
            if count_green(image, x0=x, y0=0, x1=x + 1, y1=image.height() // 2) > 0
        )

    assert green_columns(120) > green_columns(7) * 1.5


def test_d2_tray_icon_has_every_size(qapp: QApplication) -> None:
    icon = tray_icon(count=3, sizes=(16, 24, 48), dpr=2.0)
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    # QIcon lists device pixels: 16, 24 and 48 logical at 200 %.
    assert sizes == {(32, 32), (48, 48), (96, 96)}
    pixmap = icon.pixmap(QSize(24, 24), 2.0)
    image = _image(pixmap)
    assert count_green(image, x0=24, y0=0, x1=48, y1=24) > 20


def test_d2_tray_icon_over_a_custom_base(qapp: QApplication) -> None:
    base = QPixmap(32, 32)
    base.fill("#808080")
    image = _image(render_bubble(size=32, count=5, base=base))
    assert image.pixelColor(2, 30).name() == "#808080"
    assert count_green(image, x0=16, y0=0, x1=32, y1=16) > 20


def test_app_and_status_icons_load(qapp: QApplication) -> None:
    assert not app_icon().isNull()
    assert {s.width() for s in app_icon().availableSizes()} >= {16, 32, 256}
    for name in STATUS_ICONS:
        assert not status_icon(name).pixmap(16, 16).isNull()
    with pytest.raises(ValueError, match="unknown status icon"):
        status_icon("bogus")


def test_e10_status_icon_recolours(qapp: QApplication) -> None:
    from PySide6.QtGui import QColor

    image = _image(status_icon("sent", color=QColor("#ff0000")).pixmap(32, 32))
    painted = [
        image.pixelColor(x, y)
        for y in range(32)
        for x in range(32)
        if image.pixelColor(x, y).alpha() > 250
    ]
    assert painted
    assert all(c.red() > 240 and c.green() < 10 and c.blue() < 10 for c in painted)


def test_n7_window_title() -> None:
    assert window_title("Deskbell", 0) == "Deskbell"
    assert window_title("Deskbell", 3) == "(3) Deskbell"
    assert window_title("Deskbell", 250) == "(99+) Deskbell"


def test_n7_app_badge_accepts_counts(qapp: QApplication) -> None:
    app = QGuiApplication.instance()
    assert isinstance(app, QGuiApplication)
    set_app_badge(app, 4)
    set_app_badge(app, 0)
    set_app_badge(app, -1)


def test_d2_painter_state_is_clean(qapp: QApplication) -> None:
    """Drawing onto the returned pixmap still works (the painter was ended)."""
    pixmap = render_bubble(size=24, count=2)
    painter = QPainter(pixmap)
    assert painter.isActive()
    painter.end()
