"""E7, M6 (left over from issue 8): a bounced email is said under the message, can be picked in
Incoming & Outgoing's status filter, and has its own pill colour there."""

from __future__ import annotations

from datetime import UTC, datetime

from services.api import EmailedEntry, EmailLogEntry, MessageStatus
from ui.format import status_parts, status_tooltip
from ui.theme import DARK, LIGHT, contrast_ratio
from ui.widgets.center_style import status_colors
from ui.windows.email_log import STATUSES, details

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REASON = "550 5.1.1 <bob@customer.org>: user unknown"


def test_e7_a_bounce_is_said_under_the_message() -> None:
    status = MessageStatus(
        sent_at=AT,
        emailed=(
            EmailedEntry(
                name="Bob", email="bob@customer.org", status="bounced", at=AT, detail=REASON
            ),
            EmailedEntry(name="Carl", email="carl@customer.org", status="sent", at=AT, detail=None),
        ),
    )
    parts = status_parts(status, now=AT)
    assert ("failed", "Email bounced: Bob") in parts
    assert ("emailed", "Emailed to Carl") in parts
    assert REASON in status_tooltip(status)


def test_m6_bounced_is_a_status_of_the_email_log_with_its_own_colour_and_reason() -> None:
    assert "bounced" in STATUSES
    for theme in (LIGHT, DARK):
        assert status_colors("bounced", theme) != status_colors("suppressed", theme)
        assert contrast_ratio(*status_colors("bounced", theme)) >= 4.5  # D6
    entry = EmailLogEntry(
        id=1,
        direction="out",
        kind="notification",
        status="bounced",
        from_addr="desk@example.com",
        to_addrs=("bob@customer.org",),
        subject="[#1] Printer",
        message_id="<x@desk.example.com>",
        reason=REASON,
        reply="250 2.0.0 OK",
        action=None,
        item_number=1,
        attempts=1,
        next_attempt_at=None,
        created_at=AT,
        sent_at=AT,
    )
    assert details(entry) == REASON
