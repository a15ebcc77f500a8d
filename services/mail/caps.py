"""I6's outgoing caps, a loop guard: at most 10 emails to one recipient about one conversation,
and 30 to one recipient in all, within 10 minutes.

Counted per recipient, never across recipients: a conversation with many followers reaches
every one of them. Counted from the log itself (rows, not memory), so the caps hold across
restarts and processes; what goes over is logged as suppressed with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select

from services.domain.model import EmailStatus
from services.store.database import Tx
from services.store.models import Email

__all__ = [
    "CAP_PER_CONVERSATION",
    "CAP_PER_RECIPIENT",
    "CAP_WINDOW",
    "RecentSends",
    "cap_reason",
    "count_recent_sends",
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


def _recent_queries(
    conversation_ids: Collection[int], recipient_ids: Collection[int], now: datetime
) -> tuple[Select[int | None, int | None, int], Select[int | None, int]]:
    """Two grouped counts over the log for everything a batch of decisions may need."""
    recent = and_(
        Email.direction == "out",
        Email.created_at > now - CAP_WINDOW,
        Email.status.not_in(_NOT_SENT),
    )
    per_pair = (
        select(Email.recipient_id, Email.conversation_id, func.count())
        .where(recent, Email.conversation_id.in_(conversation_ids))
        .group_by(Email.recipient_id, Email.conversation_id)
    )
    per_recipient = (
        select(Email.recipient_id, func.count())
        .where(recent, Email.recipient_id.in_(recipient_ids))
        .group_by(Email.recipient_id)
    )
    return per_pair, per_recipient


def _tally(pairs: Iterable[Any], recipients: Iterable[Any]) -> RecentSends:
    per_pair: Counter[tuple[int | None, int | None]] = Counter()
    for recipient_id, conversation_id, count in pairs:
        per_pair[(recipient_id, conversation_id)] = count
    per_recipient: Counter[int] = Counter()
    for recipient_id, count in recipients:
        if recipient_id is not None:
            per_recipient[recipient_id] = count
    return RecentSends(per_pair, per_recipient)


def count_recent_sends(
    tx: Tx,
    *,
    conversation_ids: Collection[int],
    recipient_ids: Collection[int],
    now: datetime,
) -> RecentSends:
    """The recent sends a batch of decisions may need, inside a unit of work."""
    per_pair, per_recipient = _recent_queries(conversation_ids, recipient_ids, now)
    return _tally(
        tx.conn.execute(per_pair).all() if conversation_ids else (),
        tx.conn.execute(per_recipient).all() if recipient_ids else (),
    )
