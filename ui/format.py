"""How the UI words things: times, conversation labels, message statuses, counts.

Pure functions over the service's plain data, shared by widgets, windows and platform adapters,
so one conversation or one time reads the same in the list, the header, a notification and the
tray. No Qt here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

from services.api import ConversationKind, ConversationRow, MessageStatus

__all__ = [
    "bubble_text",
    "day_label",
    "first_words",
    "format_time",
    "kind_label",
    "local_time",
    "names",
    "row_label",
    "status_parts",
    "status_tooltip",
    "window_title",
]

_SPACES = re.compile(r"\s+")


def local_time(at: datetime) -> datetime:
    """The database keeps UTC; a naive value is UTC."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone()


def format_time(at: datetime | None, *, now: datetime) -> str:
    """'14:05' today, 'Mon 14:05' this week, '3 Mar' before."""
    if at is None:
        return ""
    at, now = local_time(at), local_time(now)
    if at.date() == now.date():
        return at.strftime("%H:%M")
    if 0 <= (now.date() - at.date()).days < 7:
        return at.strftime("%a %H:%M")
    return f"{at.day} {at:%b}"


def day_label(day: date, *, today: date) -> str:
    """A date separator: 'Today', 'Yesterday', 'Monday 3 March', '3 March 2023'."""
    days = (today - day).days
    if days == 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if day.year == today.year:
        return f"{day:%A} {day.day} {day:%B}"
    return f"{day.day} {day:%B %Y}"


def first_words(text: str, *, limit: int = 80) -> str:
    """One line of at most `limit` characters, cut at a word boundary, with an ellipsis."""
    line = _SPACES.sub(" ", text).strip()
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def row_label(row: ConversationRow) -> str:
    """'#12 Printer on fire' for an item's conversation, the title for a direct one."""
    return f"#{row.item_number} {row.title}" if row.item_number is not None else row.title


def kind_label(kind: ConversationKind) -> str:
    """Who reads a conversation, in one word."""
    if kind == ConversationKind.EXTERNAL:
        return "External"
    if kind == ConversationKind.DIRECT:
        return "Direct"
    return "Internal"


def names(people: Iterable[str]) -> str:
    """'Ann, Bob, Carl', or 'Ann, Bob +3' past three."""
    listed = list(people)
    if len(listed) <= 3:
        return ", ".join(listed)
    return f"{', '.join(listed[:2])} +{len(listed) - 2}"


def status_parts(
    status: MessageStatus, *, now: datetime, viewer_email: str | None = None
) -> list[tuple[str, str]]:
    """E10 as (icon name, short text) pairs, in the order a reader wants them.

    S2: "seen by" names the others who saw it, never the viewer (under someone else's
    message, "Seen by <me>" tells me nothing)."""
    parts = [("sent", f"Sent {format_time(status.sent_at, now=now)}")]
    seen = [s.name for s in status.seen if s.email != viewer_email]
    if seen:
        parts.append(("seen", "Seen by " + names(seen)))
    by_status: dict[str, list[str]] = {}
    for e in status.emailed:
        by_status.setdefault(e.status, []).append(e.name)
    for state, who in by_status.items():
        if state == "sent":
            parts.append(("emailed", "Emailed to " + names(who)))
        elif state == "failed":
            parts.append(("failed", "Email failed: " + names(who)))
        elif state == "bounced":
            # E7: the server took it, the recipient's mail system sent it back.
            parts.append(("failed", "Email bounced: " + names(who)))
        elif state in ("queued", "sending", "retrying"):
            parts.append(("queued", "Emailing " + names(who)))
    return parts


def status_tooltip(status: MessageStatus, *, viewer_email: str | None = None) -> str:
    """Every name and time behind the icons (S2, E10); the viewer is not among "seen by"."""
    lines = [f"Sent {local_time(status.sent_at):%Y-%m-%d %H:%M:%S}"]
    lines += [
        f"Seen by {s.name} <{s.email}> at {local_time(s.at):%H:%M:%S}"
        for s in status.seen
        if s.email != viewer_email
    ]
    for e in status.emailed:
        when = f" at {local_time(e.at):%H:%M:%S}" if e.at else ""
        detail = f" — {e.detail}" if e.detail else ""
        verb = "Not emailed to" if e.status == "suppressed" else "Email to"
        lines.append(f"{verb} {e.name} <{e.email}>: {e.status}{when}{detail}")
    if status.waiting:
        lines.append("Not seen yet by " + ", ".join(status.waiting))
    return "\n".join(lines)


def bubble_text(count: int) -> str:
    """'' for nothing unseen, '1'..'99', then '99+' (D2)."""
    if count <= 0:
        return ""
    return str(count) if count <= 99 else "99+"


def window_title(base: str, count: int) -> str:
    """'(3) Deskbell'; the plain title when nothing is unseen; '(99+) …' past 99 as the bubble."""
    text = bubble_text(count)
    return f"({text}) {base}" if text else base
