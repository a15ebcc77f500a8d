"""How do not disturb reads (N6) in the tray, the window and Settings, from stored settings.

The rule itself (a menu choice's end, weekly quiet hours) is the service's; this only words it
and says when to look again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.api import NotificationSettings, dnd_ends_at

__all__ = ["DndState", "dnd_state"]


@dataclass(frozen=True, slots=True)
class DndState:
    active: bool
    ends_at: datetime | None  # local time; None when off
    text: str  # "" when off, else "Do not disturb until 14:30" (or "until Tue 08:00")

    @property
    def short(self) -> str:
        """The same without "Do not disturb" (a menu entry, a chip)."""
        return self.text.removeprefix("Do not disturb ").capitalize() if self.active else ""


def dnd_state(settings: NotificationSettings, *, now_local: datetime) -> DndState:
    """Whether do not disturb holds at `now_local`, until when, in words."""
    ends = dnd_ends_at(settings, now_local=now_local)
    if ends is None:
        return DndState(active=False, ends_at=None, text="")
    ends = ends.astimezone(now_local.tzinfo)
    same_day = ends.date() == now_local.date()
    when = f"{ends:%H:%M}" if same_day else f"{ends:%a %H:%M}"
    return DndState(active=True, ends_at=ends, text=f"Do not disturb until {when}")
