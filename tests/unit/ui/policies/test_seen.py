"""S1: the pure seen rules."""

from __future__ import annotations

from ui.policies.seen import SeenPolicy


def _ready(now: float = 0.0) -> SeenPolicy:
    policy = SeenPolicy()
    policy.on_focus_gained(now)
    policy.on_input(now)
    return policy


def test_s1_seen_after_dwell_of_075_s() -> None:
    policy = _ready()
    policy.set_visible({1: 1.0}, 0.0)
    assert policy.tick(0.5) == []
    assert policy.tick(0.74) == []
    assert policy.tick(0.75) == [1]


def test_s1_never_returned_twice() -> None:
    policy = _ready()
    policy.set_visible({1: 1.0}, 0.0)
    assert policy.tick(1.0) == [1]
    policy.set_visible({1: 1.0}, 1.0)
    assert policy.tick(5.0) == []


def test_s1_a_break_restarts_the_dwell() -> None:
    policy = _ready()
    policy.set_visible({1: 1.0}, 0.0)
    assert policy.tick(0.6) == []
    policy.set_visible({}, 0.6)  # scrolled away
    policy.set_visible({1: 1.0}, 0.7)  # and back
    assert policy.tick(1.2) == []
    assert policy.tick(1.45) == [1]


def test_s1_focus_loss_is_a_break() -> None:
    policy = _ready()
    policy.set_visible({1: 1.0}, 0.0)
    policy.tick(0.6)
    policy.on_focus_lost()
    assert policy.tick(0.8) == []
    policy.on_focus_gained(0.9)
    policy.on_input(1.0)
    assert policy.tick(1.5) == []
    assert policy.tick(1.75) == [1]


def test_s1_half_visible_threshold() -> None:
    policy = _ready()
    policy.set_visible({1: 0.49, 2: 0.5, 3: 0.9}, 0.0)
    assert policy.tick(1.0) == [2, 3]
    assert policy.tick(3.0) == []


def test_s1_no_recent_input_not_seen() -> None:
    policy = _ready(0.0)
    policy.set_visible({1: 1.0}, 30.5)
    assert policy.tick(31.0) == []
    assert policy.tick(40.0) == []
    policy.on_input(40.0)
    assert policy.tick(40.8) == [1]


def test_s1_os_idle_time_counts_as_input() -> None:
    policy = _ready(0.0)
    policy.set_visible({1: 1.0}, 100.0)
    assert policy.tick(100.0, os_idle_s=50.0) == []
    assert policy.tick(100.1, os_idle_s=2.0) == []
    assert policy.tick(100.9, os_idle_s=2.8) == [1]


def test_s1_after_focus_nothing_until_first_input() -> None:
    policy = SeenPolicy()
    policy.on_input(0.0)
    policy.on_focus_gained(1.0)
    policy.set_visible({1: 1.0}, 1.0)
    assert policy.tick(3.0) == []
    # OS idle that dates from before the focus proves nothing either.
    assert policy.tick(3.1, os_idle_s=2.5) == []
    policy.on_input(3.2)
    assert policy.tick(3.5) == []
    assert policy.tick(3.95) == [1]


def test_s1_minimized_not_seen() -> None:
    policy = _ready()
    policy.set_visible({1: 1.0}, 0.0)
    policy.on_minimized(True)
    assert policy.tick(2.0) == []
    assert not policy.wants_ticks
    policy.on_minimized(False)
    policy.on_input(2.0)
    assert policy.tick(2.5) == []
    assert policy.tick(2.8) == [1]


def test_s1_wants_ticks_only_when_something_could_be_seen() -> None:
    policy = SeenPolicy()
    assert not policy.wants_ticks
    policy.on_focus_gained(0.0)
    assert not policy.wants_ticks
    policy.set_visible({1: 1.0}, 0.0)
    assert policy.wants_ticks
    policy.on_input(0.1)
    policy.tick(1.0)
    assert not policy.wants_ticks


def test_s1_focus_back_from_our_own_dialog_keeps_the_input() -> None:
    """Ctrl+K: the keys typed in the dialog are input; coming back is no new focus."""
    policy = _ready(0.0)
    policy.on_focus_lost()  # the dialog took the focus
    policy.on_input(1.0)  # typing in it, then Return
    policy.on_focus_returned(1.1)
    policy.set_visible({1: 1.0}, 1.2)
    assert policy.tick(2.0) == [1]


def test_s1_focus_from_elsewhere_still_waits_for_input() -> None:
    policy = _ready(0.0)
    policy.on_focus_lost()
    policy.on_input(1.0)
    policy.on_focus_gained(1.1)  # another application had the focus
    policy.set_visible({1: 1.0}, 1.2)
    assert policy.tick(2.0) == []


def test_issue9_next_seen_in_is_the_earliest_dwell_end_and_none_when_nothing_can_be_seen() -> None:
    """Issue 9 (idle means idle), S1: the tracker's timer waits for the next moment a message
    could become seen, not a fixed short interval; when only new input could change anything,
    there is no such moment."""
    policy = SeenPolicy()
    policy.on_focus_gained(0.0)
    policy.set_visible({1: 1.0}, 0.0)
    assert policy.next_seen_in(0.0) is None  # after focus, nothing until the first input
    policy.on_input(1.0)
    assert policy.next_seen_in(1.0) == 0.75
    policy.set_visible({1: 1.0, 2: 1.0}, 1.5)  # row 2 starts its dwell later
    assert policy.next_seen_in(1.5) == 0.25
    assert policy.tick(1.75) == [1]
    assert policy.next_seen_in(1.75) == 0.5
    assert policy.next_seen_in(40.0) is None  # input went stale: only new input helps
    policy.on_input(41.0)
    policy.on_minimized(True)
    assert policy.next_seen_in(41.0) is None
