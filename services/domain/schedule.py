"""When a delivery falls due, whether it still goes out, how sending is retried (E1–E3, E6, N6).

Pure functions: every time comes in as an argument. Times compared with each other must be
all timezone-aware (the store keeps UTC) or all naive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

from services.domain.model import NotificationSettings
from services.errors import InputError

__all__ = [
    "DND_CHOICES",
    "REASON_DELETED",
    "REASON_EMAILS_OFF",
    "REASON_SEEN",
    "RETRY_FIRST",
    "RETRY_FOR",
    "RETRY_MAX",
    "TOMORROW_AT",
    "DeliveryFacts",
    "DndChoice",
    "Recheck",
    "SmtpVerdict",
    "check_dnd_window",
    "classify_reply",
    "dnd_ends_at",
    "dnd_until_choice",
    "due_at",
    "in_do_not_disturb",
    "next_email_at",
    "recheck",
    "retry_delay",
    "should_give_up",
]

# Why a delivery is left out at the last check (E3); shown in the log (M6) and under messages.
REASON_SEEN = "seen before the email"
REASON_DELETED = "message deleted"
REASON_EMAILS_OFF = "emails turned off"

RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(minutes=30)
RETRY_FOR = timedelta(days=5)

TOMORROW_AT = time(8, 0)
DndChoice = Literal["30m", "1h", "tomorrow"]
DND_CHOICES: tuple[DndChoice, ...] = ("30m", "1h", "tomorrow")

_DAY_MIN = 24 * 60
_WEEK = timedelta(days=7)


# --- E1, E2: due times -------------------------------------------------------------------


def due_at(*, created_at: datetime, settings: NotificationSettings) -> datetime | None:
    """E1: when an unseen delivery may be emailed; None when this person gets no emails."""
    if not settings.email or settings.delay_s is None:
        return None
    return created_at + timedelta(seconds=settings.delay_s)


def next_email_at(
    *,
    pending_due: Iterable[datetime],
    last_emailed_at: datetime | None,
    delay_s: int | None,
    hold_until: datetime | None = None,
) -> datetime | None:
    """E2: when the next email for one recipient and conversation may leave.

    The earliest pending due time, but at least one delay after the previous email (so
    what falls due meanwhile is collected into one email), and not before `hold_until`
    (the end of do-not-disturb, N6: held emails go out as one when it ends).
    None when nothing is pending or the person is never emailed.
    """
    if delay_s is None:
        return None
    earliest = min(pending_due, default=None)
    if earliest is None:
        return None
    if last_emailed_at is not None:
        earliest = max(earliest, last_emailed_at + timedelta(seconds=delay_s))
    if hold_until is not None:
        earliest = max(earliest, hold_until)
    return earliest


# --- E3: the check just before sending ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """What the store knows about one delivery at the moment of sending.

    `created_at` (the message's time) is optional; when given, the recipient's *current*
    delay is enforced too, so a delay lengthened after queueing is still honoured (E1).
    """

    delivery_id: int
    message_id: int
    due_at: datetime | None
    seen_at: datetime | None
    message_deleted: bool
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Recheck:
    """The verdict of E3 for a batch of deliveries of one recipient and conversation.

    `send` are delivery ids to put in the email (none: send no email); `suppressed` pairs a
    delivery id with its reason; `waiting` are not due yet and stay pending.
    """

    send: tuple[int, ...]
    suppressed: tuple[tuple[int, str], ...]
    waiting: tuple[int, ...]


def recheck(
    deliveries: Sequence[DeliveryFacts],
    *,
    settings: NotificationSettings,
    now: datetime,
    not_before: datetime | None = None,
) -> Recheck:
    """E3: sort deliveries into send / suppressed (with reason) / waiting.

    Suppression wins over waiting: a delivery seen or deleted will never be emailed.
    `not_before` holds everything that would be sent (E2's gap after the last email, or
    the end of do-not-disturb); held deliveries wait.
    """
    send: list[int] = []
    suppressed: list[tuple[int, str]] = []
    waiting: list[int] = []
    delay_s = settings.delay_s if settings.email else None
    held = not_before is not None and now < not_before
    for d in deliveries:
        if d.seen_at is not None:
            suppressed.append((d.delivery_id, REASON_SEEN))
        elif d.message_deleted:
            suppressed.append((d.delivery_id, REASON_DELETED))
        elif delay_s is None or d.due_at is None:
            # due_at None means emails were off when the message came: it never falls due.
            suppressed.append((d.delivery_id, REASON_EMAILS_OFF))
        elif held or now < _effective_due(d.due_at, d.created_at, delay_s):
            waiting.append(d.delivery_id)
        else:
            send.append(d.delivery_id)
    return Recheck(send=tuple(send), suppressed=tuple(suppressed), waiting=tuple(waiting))


def _effective_due(due: datetime, created_at: datetime | None, delay_s: int) -> datetime:
    if created_at is None:
        return due
    return max(due, created_at + timedelta(seconds=delay_s))


# --- E6: retries and SMTP replies --------------------------------------------------------


class SmtpVerdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


def retry_delay(attempt: int) -> timedelta:
    """E6: wait after failed attempt number `attempt` (1-based): 1 min, doubling, max 30 min."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    # Cap the exponent before computing: 2**attempt for a huge attempt is wasted work.
    factor: int = 2 ** min(attempt - 1, 16)
    return min(RETRY_FIRST * factor, RETRY_MAX)


def should_give_up(*, first_queued_at: datetime, now: datetime) -> bool:
    """E6: retry for up to 5 days after the email was first queued."""
    return now - first_queued_at >= RETRY_FOR


def classify_reply(code: int) -> SmtpVerdict:
    """E6: 2xx sent; 4xx and 552 retry (RFC 5321 treats 552 as temporary); other 5xx failed.

    Anything else (no reply, a dropped connection reported as -1, a stray 1xx/3xx) is
    treated as temporary: failing at once would lose an email the server may yet take.
    """
    if 200 <= code <= 299:
        return SmtpVerdict.SENT
    if code == 552:
        return SmtpVerdict.RETRY
    if 500 <= code <= 599:
        return SmtpVerdict.FAILED
    return SmtpVerdict.RETRY


# --- N6: do not disturb ------------------------------------------------------------------


def check_dnd_window(window: tuple[int, int, int]) -> tuple[int, int, int]:
    """Validate one weekly quiet window (weekday 0=Monday, start minute, end minute).

    The end may be before the start (a window across midnight, ending the next day) and may
    be 1440 (end of day). start == end is refused: it would mean nothing, or everything.
    """
    weekday, start, end = window
    if not 0 <= weekday <= 6:
        raise InputError(f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
    if not 0 <= start < _DAY_MIN:
        raise InputError(f"start minute must be 0 to 1439, got {start}")
    if not 0 <= end <= _DAY_MIN:
        raise InputError(f"end minute must be 0 to 1440, got {end}")
    if start == end:
        raise InputError("a quiet window must not start and end at the same minute")
    return window


def in_do_not_disturb(settings: NotificationSettings, *, now_local: datetime) -> bool:
    """N6: True while `dnd_until` lies ahead or `now_local` falls in a weekly window.

    `now_local` is the person's local time (weekly windows are local wall-clock times).
    """
    return _dnd_until_active(settings.dnd_until, now_local) or (
        _window_end(settings.dnd_weekly, now_local) is not None
    )


def dnd_ends_at(settings: NotificationSettings, *, now_local: datetime) -> datetime | None:
    """N6: when do-not-disturb that holds at `now_local` ends; None if it does not hold.

    Back-to-back windows (and a `dnd_until` overlapping a window) count as one quiet time.
    Quiet hours covering the whole week end at the last bounded step; callers re-check then.
    """
    t = now_local
    for _ in range(len(settings.dnd_weekly) + 2):
        ends: list[datetime] = []
        if _dnd_until_active(settings.dnd_until, t):
            assert settings.dnd_until is not None
            ends.append(_comparable(settings.dnd_until, t))
        window_end = _window_end(settings.dnd_weekly, t)
        if window_end is not None:
            ends.append(window_end)
        if not ends:
            return None if t is now_local else t
        t = max(ends)
    return t


def dnd_until_choice(choice: DndChoice, *, now_local: datetime) -> datetime:
    """N6: the end of "do not disturb" for a menu choice; "tomorrow" is 08:00 the next day."""
    if choice == "30m":
        return _add_elapsed(now_local, timedelta(minutes=30))
    if choice == "1h":
        return _add_elapsed(now_local, timedelta(hours=1))
    if choice == "tomorrow":
        day = now_local.date() + timedelta(days=1)
        return datetime.combine(day, TOMORROW_AT, tzinfo=now_local.tzinfo)
    raise InputError(f"do not disturb choice must be one of {', '.join(DND_CHOICES)}")


def _add_elapsed(t: datetime, delta: timedelta) -> datetime:
    # Real elapsed time, not wall-clock arithmetic: correct across a DST change.
    if t.tzinfo is None:
        return t + delta
    return (t.astimezone(UTC) + delta).astimezone(t.tzinfo)


def _comparable(value: datetime, ref: datetime) -> datetime:
    """`value` with the same awareness as `ref`; a mismatch is read as wall-clock time."""
    if value.tzinfo is None and ref.tzinfo is not None:
        return value.replace(tzinfo=ref.tzinfo)
    if value.tzinfo is not None and ref.tzinfo is None:
        return value.replace(tzinfo=None)
    return value


def _dnd_until_active(dnd_until: datetime | None, now_local: datetime) -> bool:
    return dnd_until is not None and now_local < _comparable(dnd_until, now_local)


def _window_end(windows: Iterable[tuple[int, int, int]], now_local: datetime) -> datetime | None:
    """The latest end of the weekly windows containing `now_local`, or None."""
    midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = midnight - timedelta(days=now_local.weekday())
    offset = now_local - week_start  # wall-clock time since Monday 00:00
    best: timedelta | None = None
    for weekday, start, end in windows:
        if not (0 <= weekday <= 6 and 0 <= start < _DAY_MIN and 0 <= end <= _DAY_MIN):
            continue  # malformed windows are refused on input; never crash on a stored one
        if start == end:
            continue
        begin = timedelta(days=weekday, minutes=start)
        finish = timedelta(days=weekday, minutes=end + (_DAY_MIN if end < start else 0))
        # A window may run past Sunday midnight into Monday: try this week and the last.
        for shift in (timedelta(0), -_WEEK):
            if begin + shift <= offset < finish + shift:
                candidate = finish + shift
                best = candidate if best is None else max(best, candidate)
    if best is None:
        return None
    return week_start + best
