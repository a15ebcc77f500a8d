"""E1–E3, E6 and N6: due times, the last check, retries, SMTP replies, do not disturb."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.model import DELAY_CHOICES_S, NotificationSettings
from services.domain.schedule import (
    REASON_DELETED,
    REASON_EMAILS_OFF,
    REASON_SEEN,
    RETRY_FOR,
    DeliveryFacts,
    Recheck,
    SmtpVerdict,
    check_dnd_window,
    classify_reply,
    dnd_ends_at,
    dnd_until_choice,
    due_at,
    in_do_not_disturb,
    next_email_at,
    recheck,
    retry_delay,
    should_give_up,
)
from services.errors import InputError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
MIN = timedelta(minutes=1)
PARIS = ZoneInfo("Europe/Paris")

times = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
delays = st.sampled_from([d for d in DELAY_CHOICES_S if d is not None])


def facts(
    i: int,
    *,
    due: datetime | None,
    seen: datetime | None = None,
    deleted: bool = False,
    created: datetime | None = None,
) -> DeliveryFacts:
    return DeliveryFacts(
        delivery_id=i,
        message_id=100 + i,
        due_at=due,
        seen_at=seen,
        message_deleted=deleted,
        created_at=created,
    )


# --- E1, E2 ------------------------------------------------------------------------------


def test_e1_due_after_the_delay() -> None:
    assert due_at(created_at=T0, settings=NotificationSettings()) == T0 + MIN
    assert due_at(created_at=T0, settings=NotificationSettings(delay_s=900)) == T0 + 15 * MIN


def test_e1_never_due_when_emails_off_or_never() -> None:
    assert due_at(created_at=T0, settings=NotificationSettings(email=False)) is None
    assert due_at(created_at=T0, settings=NotificationSettings(delay_s=None)) is None


def test_e2_next_email_is_the_earliest_due() -> None:
    due = [T0 + 3 * MIN, T0 + MIN, T0 + 2 * MIN]
    assert next_email_at(pending_due=due, last_emailed_at=None, delay_s=60) == T0 + MIN


def test_e2_waits_one_delay_after_the_last_email() -> None:
    last = T0 + timedelta(seconds=30)
    got = next_email_at(pending_due=[T0 + MIN], last_emailed_at=last, delay_s=300)
    assert got == last + 5 * MIN


def test_e2_nothing_pending_or_never_means_no_email() -> None:
    assert next_email_at(pending_due=[], last_emailed_at=T0, delay_s=60) is None
    assert next_email_at(pending_due=[T0], last_emailed_at=None, delay_s=None) is None


def test_n6_held_until_do_not_disturb_ends() -> None:
    end = T0 + 45 * MIN
    assert next_email_at(pending_due=[T0], last_emailed_at=None, delay_s=60, hold_until=end) == end


@given(created=times, delay=delays, last=st.one_of(st.none(), times))
def test_e1_property_next_email_never_before_full_delay(
    created: datetime, delay: int, last: datetime | None
) -> None:
    settings = NotificationSettings(delay_s=delay)
    due = due_at(created_at=created, settings=settings)
    assert due is not None
    assert due >= created + timedelta(seconds=delay)
    nxt = next_email_at(pending_due=[due], last_emailed_at=last, delay_s=delay)
    assert nxt is not None
    assert nxt >= created + timedelta(seconds=delay)
    if last is not None:
        assert nxt >= last + timedelta(seconds=delay)  # E2


# --- E3 ----------------------------------------------------------------------------------


def test_e3_recheck_sorts_send_suppressed_waiting() -> None:
    got = recheck(
        [
            facts(1, due=T0),
            facts(2, due=T0, seen=T0 - MIN),
            facts(3, due=T0, deleted=True),
            facts(4, due=T0 + MIN),
        ],
        settings=NotificationSettings(),
        now=T0,
    )
    assert got == Recheck(
        send=(1,), suppressed=((2, REASON_SEEN), (3, REASON_DELETED)), waiting=(4,)
    )


def test_e3_emails_turned_off_suppresses_everything() -> None:
    for settings in (NotificationSettings(email=False), NotificationSettings(delay_s=None)):
        got = recheck([facts(1, due=T0), facts(2, due=T0 + MIN)], settings=settings, now=T0)
        assert got.send == ()
        assert got.suppressed == ((1, REASON_EMAILS_OFF), (2, REASON_EMAILS_OFF))


def test_e3_no_due_time_is_never_sent() -> None:
    got = recheck([facts(1, due=None)], settings=NotificationSettings(), now=T0)
    assert got.suppressed == ((1, REASON_EMAILS_OFF),)


def test_e3_seen_wins_over_not_yet_due() -> None:
    got = recheck([facts(1, due=T0 + MIN, seen=T0)], settings=NotificationSettings(), now=T0)
    assert got == Recheck(send=(), suppressed=((1, REASON_SEEN),), waiting=())


def test_e1_lengthened_delay_is_honoured_at_the_last_check() -> None:
    # Queued with 1 min, then the person chose 15 min: the message waits the full 15.
    d = facts(1, due=T0 + MIN, created=T0)
    settings = NotificationSettings(delay_s=900)
    assert recheck([d], settings=settings, now=T0 + 2 * MIN).waiting == (1,)
    assert recheck([d], settings=settings, now=T0 + 15 * MIN).send == (1,)


def test_e2_not_before_holds_what_would_be_sent() -> None:
    d = facts(1, due=T0)
    got = recheck(
        [d, facts(2, due=T0, seen=T0)], settings=NotificationSettings(), now=T0, not_before=T0 + MIN
    )
    assert got == Recheck(send=(), suppressed=((2, REASON_SEEN),), waiting=(1,))
    assert recheck(
        [d], settings=NotificationSettings(), now=T0 + MIN, not_before=T0 + MIN
    ).send == (1,)


@given(
    created=times,
    delay=delays,
    now_offset=st.integers(min_value=-7200, max_value=7200),
    seen=st.booleans(),
    deleted=st.booleans(),
)
def test_e1_e3_property_recheck_never_sends_early_or_seen(
    created: datetime, delay: int, now_offset: int, seen: bool, deleted: bool
) -> None:
    settings = NotificationSettings(delay_s=delay)
    d = facts(
        1,
        due=due_at(created_at=created, settings=settings),
        created=created,
        seen=created if seen else None,
        deleted=deleted,
    )
    now = created + timedelta(seconds=now_offset)
    got = recheck([d], settings=settings, now=now)
    assert len(got.send) + len(got.suppressed) + len(got.waiting) == 1
    if got.send:
        assert now >= created + timedelta(seconds=delay)  # E1
        assert not seen  # E3, S3
        assert not deleted


# --- E6 ----------------------------------------------------------------------------------


def test_e6_retry_delays_double_up_to_thirty_minutes() -> None:
    got = [retry_delay(n) for n in range(1, 9)]
    assert got == [MIN, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN, 30 * MIN, 30 * MIN, 30 * MIN]
    assert retry_delay(10_000) == 30 * MIN
    with pytest.raises(ValueError, match="attempt"):
        retry_delay(0)


def test_e6_give_up_after_five_days() -> None:
    assert timedelta(days=5) == RETRY_FOR
    assert not should_give_up(first_queued_at=T0, now=T0 + timedelta(days=5) - MIN)
    assert should_give_up(first_queued_at=T0, now=T0 + timedelta(days=5))


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (250, SmtpVerdict.SENT),
        (221, SmtpVerdict.SENT),
        (421, SmtpVerdict.RETRY),
        (450, SmtpVerdict.RETRY),
        (452, SmtpVerdict.RETRY),
        (552, SmtpVerdict.RETRY),
        (550, SmtpVerdict.FAILED),
        (553, SmtpVerdict.FAILED),
        (554, SmtpVerdict.FAILED),
        (-1, SmtpVerdict.RETRY),
    ],
)
def test_e6_classify_smtp_reply(code: int, verdict: SmtpVerdict) -> None:
    assert classify_reply(code) is verdict


# --- N6 ----------------------------------------------------------------------------------


def test_n6_dnd_until_in_effect_until_its_end() -> None:
    settings = NotificationSettings(dnd_until=T0 + 30 * MIN)
    assert in_do_not_disturb(settings, now_local=T0.astimezone(PARIS))
    assert not in_do_not_disturb(settings, now_local=(T0 + 30 * MIN).astimezone(PARIS))
    assert not in_do_not_disturb(NotificationSettings(), now_local=T0)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """January 2026 in Paris: the 5th is a Monday."""
    return datetime(2026, 1, day, hour, minute, tzinfo=PARIS)


def test_n6_weekly_window_same_day() -> None:
    settings = NotificationSettings(dnd_weekly=((0, 12 * 60, 13 * 60),))  # Monday lunch
    assert not in_do_not_disturb(settings, now_local=local(5, 11, 59))
    assert in_do_not_disturb(settings, now_local=local(5, 12, 0))
    assert in_do_not_disturb(settings, now_local=local(5, 12, 59))
    assert not in_do_not_disturb(settings, now_local=local(5, 13, 0))
    assert not in_do_not_disturb(settings, now_local=local(6, 12, 30))  # Tuesday


def test_n6_weekly_window_across_midnight() -> None:
    settings = NotificationSettings(dnd_weekly=((4, 22 * 60, 7 * 60),))  # Friday 22:00 → Sat 07:00
    assert in_do_not_disturb(settings, now_local=local(9, 23))
    assert in_do_not_disturb(settings, now_local=local(10, 6, 59))
    assert not in_do_not_disturb(settings, now_local=local(10, 7))
    assert not in_do_not_disturb(settings, now_local=local(9, 21, 59))
    assert not in_do_not_disturb(settings, now_local=local(8, 23))  # Thursday night


def test_n6_sunday_night_window_runs_into_monday() -> None:
    settings = NotificationSettings(dnd_weekly=((6, 20 * 60, 8 * 60),))
    assert in_do_not_disturb(settings, now_local=local(11, 21))  # Sunday
    assert in_do_not_disturb(settings, now_local=local(12, 7, 30))  # Monday
    assert not in_do_not_disturb(settings, now_local=local(12, 8))


def test_n6_dnd_ends_at_chains_back_to_back_windows() -> None:
    settings = NotificationSettings(
        dnd_weekly=((4, 22 * 60, 24 * 60), (5, 0, 9 * 60)),
        dnd_until=local(9, 21),
    )
    assert dnd_ends_at(settings, now_local=local(9, 20)) == local(9, 21)
    assert dnd_ends_at(settings, now_local=local(9, 23)) == local(10, 9)
    assert dnd_ends_at(settings, now_local=local(9, 21, 30)) is None


def test_n6_dnd_choices() -> None:
    now = local(5, 16, 10)
    assert dnd_until_choice("30m", now_local=now) == local(5, 16, 40)
    assert dnd_until_choice("1h", now_local=now) == local(5, 17, 10)
    assert dnd_until_choice("tomorrow", now_local=now) == local(6, 8)
    with pytest.raises(InputError):
        dnd_until_choice("forever", now_local=now)  # type: ignore[arg-type]


def test_n6_thirty_minutes_are_real_minutes_across_dst() -> None:
    before = datetime(2026, 3, 29, 1, 45, tzinfo=PARIS)  # clocks jump 02:00 → 03:00
    got = dnd_until_choice("30m", now_local=before)
    assert got.hour == 3  # 01:45 + 30 real minutes is 03:15 local, not 02:15
    assert got.astimezone(UTC) == before.astimezone(UTC) + timedelta(minutes=30)


def test_n6_check_dnd_window() -> None:
    assert check_dnd_window((6, 1320, 480)) == (6, 1320, 480)
    assert check_dnd_window((0, 0, 1440)) == (0, 0, 1440)
    for bad in ((7, 0, 60), (0, -1, 60), (0, 1440, 60), (0, 0, 1441), (0, 60, 60)):
        with pytest.raises(InputError):
            check_dnd_window(bad)


def test_n6_malformed_stored_window_is_ignored_not_fatal() -> None:
    settings = NotificationSettings(dnd_weekly=((9, 0, 60), (0, 60, 60)))
    assert not in_do_not_disturb(settings, now_local=local(5, 0, 30))


@given(
    window=st.tuples(st.integers(0, 6), st.integers(0, 1439), st.integers(0, 1440)).filter(
        lambda w: w[1] != w[2]
    ),
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
)
def test_n6_property_window_membership_matches_minute_of_week(
    window: tuple[int, int, int], moment: datetime
) -> None:
    weekday, start, end = window
    minute = moment.weekday() * 1440 + moment.hour * 60 + moment.minute
    begin = weekday * 1440 + start
    finish = weekday * 1440 + end + (1440 if end < start else 0)
    week = 7 * 1440
    expected = begin <= minute < finish or begin <= minute + week < finish
    settings = NotificationSettings(dnd_weekly=(window,))
    assert in_do_not_disturb(settings, now_local=moment) is expected
    if expected:
        end_at = dnd_ends_at(settings, now_local=moment)
        assert end_at is not None
        assert end_at > moment
        assert not in_do_not_disturb(settings, now_local=end_at)
