"""Plain data the rules work on: no I/O, no ORM, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

__all__ = [
    "DEFAULT_DELAY_S",
    "DELAY_CHOICES_S",
    "ITEM_STATUSES",
    "MAX_MESSAGE_CHARS",
    "MAX_SEARCH_CHARS",
    "ConversationKind",
    "DeliveryState",
    "EmailStatus",
    "NotificationSettings",
    "Person",
    "PersonKind",
]

DEFAULT_DELAY_S = 60
# Per-user choices of E1: 1, 2, 5, 15, 60 minutes; None means "never email me".
DELAY_CHOICES_S: tuple[int | None, ...] = (60, 120, 300, 900, 3600, None)
MAX_MESSAGE_CHARS = 100_000
# A search (Ctrl+K, the email log) longer than any title or address can match nothing, and
# SQLite refuses LIKE patterns past 50,000 bytes.
MAX_SEARCH_CHARS = 200


class PersonKind(StrEnum):
    USER = "user"
    CUSTOMER = "customer"


class ConversationKind(StrEnum):
    INTERNAL = "internal"
    EXTERNAL = "external"
    DIRECT = "direct"

    @property
    def users_only(self) -> bool:
        """R2: internal and direct conversations are for users only."""
        return self is not ConversationKind.EXTERNAL


class DeliveryState(StrEnum):
    PENDING = "pending"  # unseen, may fall due
    SEEN = "seen"
    EMAILED = "emailed"  # handed to an outbox email (its status says whether it left)
    SUPPRESSED = "suppressed"  # will never be emailed; `reason` says why


# An item's statuses, in the order of its life. "closed" fires the item-closed automations.
ITEM_STATUSES: Final = ("open", "in-progress", "pending", "on-hold", "closed")


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    BOUNCED = "bounced"  # accepted, then a delivery status notification said it failed (E7)
    RECEIVED = "received"
    IGNORED = "ignored"

    @property
    def pending(self) -> bool:
        return self in (EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING)


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    email: str
    name: str
    kind: PersonKind

    @property
    def is_user(self) -> bool:
        return self.kind is PersonKind.USER


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """R5, N6 and the delay of E1, for one person."""

    in_app: bool = True
    email: bool = True
    sound: bool = True
    delay_s: int | None = DEFAULT_DELAY_S
    dnd_until: datetime | None = None
    # Weekly quiet hours (N6): (weekday 0=Monday, start minute, end minute) in local time.
    dnd_weekly: tuple[tuple[int, int, int], ...] = field(default_factory=tuple)
