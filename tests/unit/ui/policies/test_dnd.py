"""N6: do not disturb read from stored settings, in words, with its end."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.api import NotificationSettings
from ui.policies.dnd import dnd_state

TZ = timezone(timedelta(hours=1))
NOW = datetime(2025, 3, 4, 10, 0, tzinfo=TZ)  # a Tuesday


def test_n6_off_reads_as_nothing() -> None:
    state = dnd_state(NotificationSettings(), now_local=NOW)
    assert not state.active and state.text == "" and state.short == ""


def test_n6_until_later_today() -> None:
    state = dnd_state(NotificationSettings(dnd_until=NOW + timedelta(minutes=30)), now_local=NOW)
    assert state.active
    assert state.text == "Do not disturb until 10:30"
    assert state.short == "Until 10:30"
    assert state.ends_at == NOW + timedelta(minutes=30)


def test_n6_until_tomorrow_names_the_day() -> None:
    until = (NOW + timedelta(days=1)).replace(hour=8)
    assert dnd_state(NotificationSettings(dnd_until=until), now_local=NOW).text == (
        "Do not disturb until Wed 08:00"
    )


def test_n6_weekly_quiet_hours_count_too() -> None:
    weekly = ((1, 9 * 60, 12 * 60),)  # Tuesdays 09:00-12:00
    state = dnd_state(NotificationSettings(dnd_weekly=weekly), now_local=NOW)
    assert state.active and state.text == "Do not disturb until 12:00"


def test_n6_an_end_in_the_past_is_off() -> None:
    state = dnd_state(NotificationSettings(dnd_until=NOW - timedelta(minutes=1)), now_local=NOW)
    assert not state.active
