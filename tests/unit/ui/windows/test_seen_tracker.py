"""S1: the Qt plumbing around SeenPolicy, with a real QListView on the offscreen platform."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QListView, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from services.clock import ManualClock
from ui.roles import MESSAGE_ID_ROLE
from ui.windows.seen_tracker import PROBE_EVERY_S, SeenTracker, visible_fractions

ROW_HEIGHT = 40


class Conversation(QWidget):
    """A window with a list of 20 message rows of 40 px, 100 px of viewport."""

    def __init__(self) -> None:
        super().__init__()
        self.model = QStandardItemModel(self)
        for message_id in range(100, 120):
            item = QStandardItem(f"message {message_id}")
            item.setData(message_id, MESSAGE_ID_ROLE)
            item.setSizeHint(QSize(200, ROW_HEIGHT))
            self.model.appendRow(item)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setFrameShape(QListView.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.resize(240, 100)


@pytest.fixture
def window(qtbot: QtBot) -> Conversation:
    widget = Conversation()
    qtbot.addWidget(widget)
    widget.show()
    widget.activateWindow()
    qtbot.waitExposed(widget, timeout=30_000)
    qtbot.waitUntil(widget.isActiveWindow, timeout=30_000)
    return widget


def _viewport_height(window: Conversation) -> int:
    return window.view.viewport().height()


def test_s1_visible_fractions_follow_scrolling(window: Conversation, qtbot: QtBot) -> None:
    height = _viewport_height(window)
    fractions = visible_fractions(window.view)
    assert fractions[100] == 1.0
    assert fractions[101] == 1.0
    assert 102 in fractions
    assert fractions[102] == pytest.approx((height - 80) / 40)
    window.view.verticalScrollBar().setValue(ROW_HEIGHT // 2)  # first row half visible
    fractions = visible_fractions(window.view)
    assert fractions[100] == pytest.approx(0.5)
    assert fractions[101] == 1.0
    assert 110 not in fractions


def test_s1_tracker_emits_seen_after_input_and_dwell(window: Conversation, qtbot: QtBot) -> None:
    clock = ManualClock()
    tracker = SeenTracker(window=window, view=window.view, clock=clock, interval_ms=20)
    tracker.set_unseen({100, 101, 102, 103, 110})
    window.view.verticalScrollBar().setValue(ROW_HEIGHT // 2 + 1)  # row 100 just under half
    qtbot.wait(30)
    # Focus came first: nothing is seen before the first input, however long we wait.
    clock.advance(2.0)
    qtbot.wait(60)
    got: list[list[int]] = []
    tracker.seen.connect(got.append)
    qtbot.wait(60)
    assert got == []
    qtbot.keyClick(window.view, Qt.Key.Key_Shift)
    clock.advance(0.5)
    qtbot.wait(60)
    assert got == []
    clock.advance(0.3)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    seen = sorted(i for batch in got for i in batch)
    assert 100 not in seen  # less than half visible
    assert 110 not in seen  # off screen
    assert seen[:2] == [101, 102]
    # Nothing left that could be seen: the timer rests.
    qtbot.waitUntil(lambda: not tracker.ticking, timeout=30_000)


def test_s1_tracker_minimized_sees_nothing(window: Conversation, qtbot: QtBot) -> None:
    clock = ManualClock()
    tracker = SeenTracker(window=window, view=window.view, clock=clock, interval_ms=20)
    got: list[list[int]] = []
    tracker.seen.connect(got.append)
    qtbot.mouseMove(window.view.viewport(), QPoint(10, 10))
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    window.showMinimized()
    qtbot.waitUntil(
        lambda: bool(window.windowState() & Qt.WindowState.WindowMinimized), timeout=30_000
    )
    clock.advance(2.0)
    qtbot.wait(80)
    assert got == []
    assert not tracker.ticking
    window.showNormal()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=30_000)
    qtbot.keyClick(window.view, Qt.Key.Key_Shift)
    clock.advance(1.0)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    assert 100 in got[0]


class _Probe:
    """A desktop idle time that says the person has been away a long time."""

    def __init__(self) -> None:
        self.calls = 0

    def idle_seconds(self) -> float:
        self.calls += 1
        return 3600.0


def test_issue9_tracker_idle_schedules_no_tick_before_the_next_dwell_end(
    window: Conversation, qtbot: QtBot
) -> None:
    """Issue 9 (idle means idle), S1: unseen rows on screen in the active window, nobody
    touching anything: no timer runs (without a desktop idle probe) or one polls the probe
    slowly; after input, the one tick is armed for the end of the dwell, not every 120 ms."""
    clock = ManualClock()
    tracker = SeenTracker(window=window, view=window.view, clock=clock)
    tracker.set_unseen({100, 101, 102})
    qtbot.wait(30)
    assert not tracker.ticking  # focus alone can make nothing seen: only input can
    qtbot.keyClick(window.view, Qt.Key.Key_Shift)
    assert tracker.ticking and tracker.tick_interval_ms == 750
    clock.advance(0.8)
    got: list[list[int]] = []
    tracker.seen.connect(got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    qtbot.waitUntil(lambda: not tracker.ticking, timeout=30_000)


def test_issue9_tracker_polls_the_desktop_idle_time_slowly_when_input_is_stale(
    window: Conversation, qtbot: QtBot
) -> None:
    """Issue 9, S1: when only the desktop's idle time could show the person is back, it is
    asked every few seconds, not at every 120 ms tick."""
    clock = ManualClock()
    probe = _Probe()
    tracker = SeenTracker(window=window, view=window.view, clock=clock, idle_probe=probe)
    tracker.set_unseen({100, 101, 102})
    qtbot.wait(30)
    assert tracker.ticking and tracker.tick_interval_ms == PROBE_EVERY_S * 1000
