"""I6's outgoing caps, a loop guard: at most 10 emails to one recipient about one conversation,
and 30 to one recipient in all, within 10 minutes.

Counted per recipient, never across recipients: a conversation with many followers reaches
every one of them. Counted from the log itself (rows, not memory), so the caps hold across
restarts and processes; what goes over is logged as suppressed with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from services.domain.model import EmailStatus
from services.store.models import Email

__all__ = [
    "CAP_PER_CONVERSATION",
    "CAP_PER_RECIPIENT",
    "CAP_WINDOW",
    "RecentSends",
    "cap_reason",
    "recent_sends",
]

CAP_WINDOW = timedelta(minutes=10)
CAP_PER_CONVERSATION = 10  # to one recipient about one conversation
CAP_PER_RECIPIENT = 30  # to one recipient about anything
# Emails that never left count for nothing: the guard is about what reaches a mailbox.
_NOT_SENT = (EmailStatus.SUPPRESSED, EmailStatus.FAILED)


class RecentSends:
    """Emails sent (or queued) within the window, per recipient and conversation and per
    recipient; an email with no recipient id counts against its conversation alone."""

    def __init__(
        self,
        per_pair: Counter[tuple[int | None, int | None]],
        per_recipient: Counter[int],
    ) -> None:
        self.per_pair = per_pair
        self.per_recipient = per_recipient

    def add(self, *, conversation_id: int | None, recipient_id: int | None) -> None:
        if conversation_id is not None:
            self.per_pair[(recipient_id, conversation_id)] += 1
        if recipient_id is not None:
            self.per_recipient[recipient_id] += 1


def cap_reason(
    sends: RecentSends, *, conversation_id: int | None, recipient_id: int | None
) -> str | None:
    """Why one more email to `recipient_id` about `conversation_id` would break a cap, or None."""
    if (
        conversation_id is not None
        and sends.per_pair[(recipient_id, conversation_id)] >= CAP_PER_CONVERSATION
    ):
        return (
            f"loop guard: more than {CAP_PER_CONVERSATION} emails to this recipient "
            "about this conversation in 10 minutes"
        )
    if recipient_id is not None and sends.per_recipient[recipient_id] >= CAP_PER_RECIPIENT:
        return f"loop guard: more than {CAP_PER_RECIPIENT} emails to this recipient in 10 minutes"
    return None


def recent_sends(
    session: Session,
    *,
    conversation_ids: Collection[int],
    recipient_ids: Collection[int],
    now: datetime,
) -> RecentSends:
    """Two grouped counts over the log for everything a batch of decisions may need."""
    recent = and_(
        Email.direction == "out",
        Email.created_at > now - CAP_WINDOW,
        Email.status.not_in(_NOT_SENT),
    )
    per_pair: Counter[tuple[int | None, int | None]] = Counter()
    if conversation_ids:
        for recipient_id, conversation_id, count in session.execute(
            select(Email.recipient_id, Email.conversation_id, func.count())
            .where(recent, Email.conversation_id.in_(conversation_ids))
            .group_by(Email.recipient_id, Email.conversation_id)
        ):
            per_pair[(recipient_id, conversation_id)] = count
    per_recipient: Counter[int] = Counter()
    if recipient_ids:
        for recipient_id, count in session.execute(
            select(Email.recipient_id, func.count())
            .where(recent, Email.recipient_id.in_(recipient_ids))
            .group_by(Email.recipient_id)
        ):
            if recipient_id is not None:
                per_recipient[recipient_id] = count
    return RecentSends(per_pair, per_recipient)
