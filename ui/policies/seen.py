"""When the user has *seen* a message (S1): the pure rule, over events and monotonic times.

Seen: for about 0.75 s without a break, the message's row is at least half visible in the
conversation view, the window is active and not minimized, and the user used keyboard or mouse
within the last 30 s. After the window gains focus nothing is seen until the first input.
`ui.windows.seen_tracker.SeenTracker` feeds it from Qt.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DWELL_S", "INPUT_RECENCY_S", "MIN_VISIBLE_FRACTION", "SeenPolicy"]

DWELL_S = 0.75
INPUT_RECENCY_S = 30.0
MIN_VISIBLE_FRACTION = 0.5


class SeenPolicy:
    """Pure S1 rules over events and monotonic times; no Qt, no clock of its own."""

    def __init__(
        self,
        *,
        dwell_s: float = DWELL_S,
        input_recency_s: float = INPUT_RECENCY_S,
        min_fraction: float = MIN_VISIBLE_FRACTION,
    ) -> None:
        self._dwell_s = dwell_s
        self._input_recency_s = input_recency_s
        self._min_fraction = min_fraction
        self._active = False
        self._minimized = False
        self._focused_at: float | None = None
        self._last_input: float | None = None
        self._visible: set[int] = set()
        self._since: dict[int, float] = {}
        self._seen: set[int] = set()
        self._os_idle_s: float | None = None

    # -- events -------------------------------------------------------------------------------

    def on_input(self, now: float) -> None:
        self._last_input = now
        self._start_dwell(now)

    def on_focus_gained(self, now: float) -> None:
        self._active = True
        self._focused_at = now
        self._since.clear()

    def on_focus_returned(self, now: float) -> None:
        """Focus came back from another window of this app (Ctrl+K, a dialog): the person
        was using it, so the input there still counts; this is no new focus."""
        self._active = True
        self._since.clear()
        if self._focused_at is None:
            self._focused_at = now
        self._start_dwell(now)

    def on_focus_lost(self) -> None:
        self._active = False
        self._since.clear()

    def on_minimized(self, minimized: bool) -> None:
        self._minimized = minimized
        if minimized:
            self._since.clear()

    def set_visible(self, message_ids_with_fraction: Mapping[int, float], now: float) -> None:
        """The rows now in view, with the share of each row that is visible (0..1)."""
        visible = {
            message_id
            for message_id, fraction in message_ids_with_fraction.items()
            if fraction >= self._min_fraction and message_id not in self._seen
        }
        for gone in self._visible - visible:
            self._since.pop(gone, None)
        self._visible = visible
        self._start_dwell(now)

    # -- queries ------------------------------------------------------------------------------

    @property
    def wants_ticks(self) -> bool:
        """Whether anything could become seen: otherwise the plumbing may stop its timer."""
        return self._active and not self._minimized and bool(self._visible)

    def next_seen_in(self, now: float) -> float | None:
        """Seconds until the earliest visible message completes its dwell, or None when
        nothing can become seen without a new event (no input, input stale, not active)."""
        if not self.wants_ticks or not self._conditions_hold(now):
            return None
        return max(0.0, min(self._since.get(i, now) + self._dwell_s - now for i in self._visible))

    def input_is_stale(self, now: float) -> bool:
        """True when only the OS idle time could still prove recent input (saves a D-Bus call)."""
        return self._last_input is None or now - self._last_input > self._input_recency_s / 2

    def tick(self, now: float, *, os_idle_s: float | None = None) -> list[int]:
        """Message ids that became seen at `now`; each id is returned once, ever."""
        self._os_idle_s = os_idle_s
        if not self._conditions_hold(now):
            self._since.clear()
            return []
        newly_seen = []
        for message_id in sorted(self._visible):
            start = self._since.setdefault(message_id, now)
            if now - start >= self._dwell_s:
                newly_seen.append(message_id)
        for message_id in newly_seen:
            self._seen.add(message_id)
            self._visible.discard(message_id)
            del self._since[message_id]
        return newly_seen

    # -- rules --------------------------------------------------------------------------------

    def _last_input_at(self, now: float) -> float | None:
        candidates = [t for t in (self._last_input,) if t is not None]
        if self._os_idle_s is not None:
            candidates.append(now - self._os_idle_s)
        return max(candidates) if candidates else None

    def _conditions_hold(self, now: float) -> bool:
        if not self._active or self._minimized or self._focused_at is None:
            return False
        last_input = self._last_input_at(now)
        if last_input is None or last_input < self._focused_at:
            return False  # nothing is seen after focus until the first input
        return now - last_input <= self._input_recency_s

    def _start_dwell(self, now: float) -> None:
        if self._conditions_hold(now):
            for message_id in self._visible:
                self._since.setdefault(message_id, now)
