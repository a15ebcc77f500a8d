"""Where the main window goes (D6: usable at 125-200 % scaling): a size that fits the screen's
available area, and a saved place restored only onto a screen that still exists.

Plain rectangles in logical pixels (what Qt reports at any scale factor); no Qt here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_SIZE", "TITLE_BAR", "Rect", "SavedPlace", "fit", "place"]

DEFAULT_SIZE = (1100, 720)
# Room a window manager's title bar and borders take around the client area we size.
TITLE_BAR = 32
BORDER = 4
MIN_VISIBLE = 100  # a saved place counts as on a screen when this much of it shows there


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def overlap(self, other: Rect) -> tuple[int, int]:
        """(width, height) of the intersection; (0, 0) when they do not meet."""
        w = min(self.right, other.right) - max(self.x, other.x)
        h = min(self.bottom, other.bottom) - max(self.y, other.y)
        return (max(0, w), max(0, h))


@dataclass(frozen=True, slots=True)
class SavedPlace:
    screen: str  # the screen's name when it was saved
    rect: Rect  # the client area, in that screen's logical coordinates
    maximized: bool = False


def fit(size: tuple[int, int], available: Rect, *, at: tuple[int, int] | None = None) -> Rect:
    """A client rect of at most `size` whose frame lies inside `available`.

    Centred, unless `at` (a top-left corner) is given: then moved only as far as needed.
    """
    room_w = max(1, available.w - 2 * BORDER)
    room_h = max(1, available.h - TITLE_BAR - BORDER)
    w, h = min(size[0], room_w), min(size[1], room_h)
    left, top = available.x + BORDER, available.y + TITLE_BAR
    if at is None:
        x = left + (room_w - w) // 2
        y = top + (room_h - h) // 2
    else:
        x = min(max(at[0], left), left + room_w - w)
        y = min(max(at[1], top), top + room_h - h)
    return Rect(x, y, w, h)


def place(
    saved: SavedPlace | None, screens: Mapping[str, Rect], *, primary: str
) -> tuple[Rect, bool]:
    """(client rect, maximized): the saved place if its screen is still there and the window
    would show on it, else the default size centred on the primary screen."""
    if saved is not None and saved.screen in screens:
        available = screens[saved.screen]
        w, h = saved.rect.overlap(available)
        if w >= MIN_VISIBLE and h >= MIN_VISIBLE:
            rect = fit((saved.rect.w, saved.rect.h), available, at=(saved.rect.x, saved.rect.y))
            return rect, saved.maximized
    return fit(DEFAULT_SIZE, screens[primary]), False
