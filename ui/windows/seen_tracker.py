"""The Qt plumbing that feeds `ui.policies.seen.SeenPolicy` (S1): window focus and state,
input anywhere in the app, which rows of the conversation view are visible, and
one timer armed for the next moment something could become seen."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import QAbstractItemView, QApplication, QWidget

from services.api import Clock
from ui.platform.idle import IdleProbe
from ui.policies.seen import SeenPolicy
from ui.roles import MESSAGE_ID_ROLE

__all__ = ["PROBE_EVERY_S", "SeenTracker", "visible_fractions"]

log = logging.getLogger(__name__)

# While only the desktop's idle time could show the person is back (our windows got no input
# for a while), it is asked this often: an idle app must not wake several times a second.
PROBE_EVERY_S = 5.0


def visible_fractions(view: QAbstractItemView) -> dict[int, float]:
    """{message id: visible share of its row} for the rows of `view`'s viewport."""
    model = view.model()
    if model is None:
        return {}
    viewport = view.viewport().rect()
    if viewport.isEmpty() or not view.isVisible():
        return {}
    root = view.rootIndex()
    first = view.indexAt(QPoint(viewport.left() + 1, viewport.top() + 1))
    row = first.row() if first.isValid() else 0
    fractions: dict[int, float] = {}
    rows = model.rowCount(root)
    while row < rows:
        index = model.index(row, 0, root)
        rect: QRect = view.visualRect(index)
        row += 1
        if rect.isEmpty():
            continue
        if rect.top() > viewport.bottom():
            break
        area = rect.width() * rect.height()
        shown = rect.intersected(viewport)
        message_id = index.data(MESSAGE_ID_ROLE)
        if isinstance(message_id, int) and area > 0 and not shown.isEmpty():
            fractions[message_id] = shown.width() * shown.height() / area
    return fractions


_INPUT_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
        QEvent.Type.TouchUpdate,
        QEvent.Type.HoverMove,
    }
)
_WINDOW_EVENTS = frozenset(
    {
        QEvent.Type.WindowActivate,
        QEvent.Type.WindowDeactivate,
        QEvent.Type.WindowStateChange,
        QEvent.Type.Show,
        QEvent.Type.Hide,
    }
)


class SeenTracker(QObject):
    """Feeds SeenPolicy from Qt and emits `seen(list[int])` for newly seen message ids."""

    seen = Signal(list)

    def __init__(
        self,
        *,
        window: QWidget,
        view: QAbstractItemView,
        clock: Clock,
        idle_probe: IdleProbe | None = None,
        unseen_ids: Callable[[], set[int]] | None = None,
        interval_ms: int = 120,
        policy: SeenPolicy | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent if parent is not None else window)
        self._window = window
        self._view = view
        self._clock = clock
        self._idle_probe = idle_probe
        self._unseen_ids = unseen_ids
        self._unseen: set[int] | None = None
        self.policy = policy if policy is not None else SeenPolicy()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)  # re-armed for the next deadline by each tick
        self._min_interval_ms = interval_ms
        self._timer.timeout.connect(self._on_timer_timeout)
        self._minimized = False
        self._focus_in_app = False
        # Scrolling, resizing and model changes move rows; coalesce them into one refresh.
        self._refresh_pending = False
        app = QApplication.instance()
        if app is None:
            raise RuntimeError("SeenTracker needs a QApplication")
        self._app = app
        self._viewport = view.viewport()
        self._alive = True
        # The application's filter sees every object's events, the window's and the viewport's
        # too: one filter, so each event counts once (a second one on the window saw focus
        # changes twice).
        app.installEventFilter(self)
        # The view dies with its window, before this tracker: stop listening right then.
        view.destroyed.connect(self._on_view_destroyed)
        view.verticalScrollBar().valueChanged.connect(self._on_view_scrolled)
        view.horizontalScrollBar().valueChanged.connect(self._on_view_scrolled)
        model = view.model()
        if model is not None:
            for signal in (
                model.rowsInserted,
                model.rowsRemoved,
                model.modelReset,
                model.layoutChanged,
                model.dataChanged,
            ):
                signal.connect(self._on_view_scrolled)
        if window.isActiveWindow():
            self.policy.on_focus_gained(self._clock.monotonic())
        self._sync_minimized()
        self.refresh()

    def set_unseen(self, ids: Iterable[int]) -> None:
        """The ids not yet seen (by the service's count); others are never reported again."""
        self._unseen = set(ids)
        self.refresh()

    @property
    def ticking(self) -> bool:
        return self._timer.isActive()

    @property
    def tick_interval_ms(self) -> int:
        return self._timer.interval()

    def refresh(self) -> None:
        """Recompute the visible rows now and start or stop ticking."""
        self._refresh_pending = False
        if not self._alive:
            return
        fractions = visible_fractions(self._view)
        unseen = self._current_unseen()
        if unseen is not None:
            fractions = {k: v for k, v in fractions.items() if k in unseen}
        self.policy.set_visible(fractions, self._clock.monotonic())
        self._update_timer()

    def _current_unseen(self) -> set[int] | None:
        if self._unseen_ids is not None:
            return self._unseen_ids()
        return self._unseen

    def _update_timer(self) -> None:
        """Arm the one tick for the next moment something could become seen; none while
        only an input event (which calls this again) could change anything."""
        wait_s = self.policy.next_seen_in(self._clock.monotonic())
        if wait_s is None and self._idle_probe is not None and self.policy.wants_ticks:
            wait_s = PROBE_EVERY_S
        if wait_s is None:
            self._timer.stop()
        else:
            self._timer.start(max(self._min_interval_ms, math.ceil(wait_s * 1000)))

    def _sync_minimized(self) -> None:
        # isActiveWindow() can stay True after showMinimized() (NOTES.md): read the state.
        minimized = bool(self._window.windowState() & Qt.WindowState.WindowMinimized) or (
            not self._window.isVisible()
        )
        if minimized != self._minimized:
            self._minimized = minimized
            self.policy.on_minimized(minimized)

    def _schedule_refresh(self) -> None:
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self, self.refresh)

    def _on_view_scrolled(self, *_args: object) -> None:
        self._schedule_refresh()

    def _on_timer_timeout(self) -> None:
        now = self._clock.monotonic()
        os_idle: float | None = None
        if self._idle_probe is not None and self.policy.input_is_stale(now):
            os_idle = self._idle_probe.idle_seconds()
        newly_seen = self.policy.tick(now, os_idle_s=os_idle)
        unseen = self._current_unseen()
        if unseen is not None:
            newly_seen = [i for i in newly_seen if i in unseen]
        if newly_seen:
            self.seen.emit(newly_seen)
        self._update_timer()

    def _on_view_destroyed(self) -> None:
        self._alive = False
        self._timer.stop()
        self._app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._alive:
            return False
        kind = event.type()
        if kind in _INPUT_EVENTS:
            self.policy.on_input(self._clock.monotonic())
            self._update_timer()
        elif watched is self._window and kind in _WINDOW_EVENTS:
            self._on_window_event(kind)
        elif watched is self._viewport and kind == QEvent.Type.Resize:
            self._schedule_refresh()
        return False

    def _on_window_event(self, kind: QEvent.Type) -> None:
        if kind == QEvent.Type.WindowActivate:
            if self._focus_in_app:
                self.policy.on_focus_returned(self._clock.monotonic())
            else:
                self.policy.on_focus_gained(self._clock.monotonic())
            self._focus_in_app = False
        elif kind == QEvent.Type.WindowDeactivate:
            # Another window of ours took the focus (Ctrl+K, a dialog): what the person types
            # there is input, and coming back is not a new focus.
            active = self._app.activeWindow() if isinstance(self._app, QApplication) else None
            self._focus_in_app = active is not None and active is not self._window
            self.policy.on_focus_lost()
        self._sync_minimized()
        self._schedule_refresh()
