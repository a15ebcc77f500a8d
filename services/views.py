"""What the service hands out: small frozen dataclasses, never ORM rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.domain.model import ConversationKind, NotificationSettings, PersonKind

__all__ = [
    "BounceInfo",
    "ChangeEvent",
    "ChangeKind",
    "Changes",
    "ConversationInfo",
    "ConversationRow",
    "EmailLogEntry",
    "EmailedEntry",
    "Inbox",
    "ItemInfo",
    "ItemMessage",
    "MessageRow",
    "MessageStatus",
    "PersonInfo",
    "PostResult",
    "SeenEntry",
    "UnseenCounts",
]


class Inbox:
    """The two inboxes of the window: direct conversations are internal (users only)."""

    INTERNAL: tuple[ConversationKind, ...] = (ConversationKind.INTERNAL, ConversationKind.DIRECT)
    EXTERNAL: tuple[ConversationKind, ...] = (ConversationKind.EXTERNAL,)


@dataclass(frozen=True, slots=True)
class PersonInfo:
    id: int
    email: str
    name: str
    kind: PersonKind
    is_admin: bool = False
    settings: NotificationSettings = field(default_factory=NotificationSettings)


@dataclass(frozen=True, slots=True)
class ItemInfo:
    id: int
    number: int
    title: str
    status: str
    internal_conversation_id: int
    external_conversation_id: int
    followers: tuple[PersonInfo, ...]
    requester: PersonInfo | None
    assignee: PersonInfo | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: int
    kind: ConversationKind
    item_number: int | None
    title: str
    members: tuple[PersonInfo, ...]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One row of the Open Conversations list (N2)."""

    id: int
    kind: ConversationKind
    item_number: int | None
    title: str
    last_text: str
    last_author: str
    last_at: datetime | None
    unseen: int


@dataclass(frozen=True, slots=True)
class SeenEntry:
    name: str
    email: str
    at: datetime


@dataclass(frozen=True, slots=True)
class EmailedEntry:
    name: str
    email: str
    status: str  # EmailStatus, or "suppressed" for a delivery left out (E3)
    at: datetime | None
    detail: str | None  # the server's reply, the next attempt, or why it was left out


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """The icons under a message (E10): sent; seen by whom and when; emailed to whom."""

    sent_at: datetime
    seen: tuple[SeenEntry, ...] = ()
    emailed: tuple[EmailedEntry, ...] = ()
    waiting: tuple[str, ...] = ()  # names of recipients who have not seen it yet


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    conversation_id: int
    author: PersonInfo | None
    text: str
    created_at: datetime
    source: str
    status: MessageStatus
    unseen_by_viewer: bool = False


@dataclass(frozen=True, slots=True)
class ItemMessage:
    """One message of an item and which of its conversations holds it (`deskbell item show`)."""

    conversation: ConversationKind
    message: MessageRow


@dataclass(frozen=True, slots=True)
class UnseenCounts:
    """N3: the bubble shows `total`; each inbox tab its own; each row its own."""

    total: int = 0
    internal: int = 0
    external: int = 0
    by_conversation: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a write changed, so views refresh only that (Anki's OpChanges)."""

    conversations: frozenset[int] = frozenset()
    counts: bool = False
    emails: bool = False
    people: bool = False
    items: bool = False

    def __or__(self, other: Changes) -> Changes:
        return Changes(
            conversations=self.conversations | other.conversations,
            counts=self.counts or other.counts,
            emails=self.emails or other.emails,
            people=self.people or other.people,
            items=self.items or other.items,
        )


class ChangeKind(StrEnum):
    """What a change-feed entry is about: listeners refresh only what it names."""

    MESSAGE = "message"  # posted or deleted in a conversation
    SEEN = "seen"  # a person saw messages of a conversation
    EMAIL = "email"  # an email was queued, sent, failed or received
    PERSON = "person"
    ITEM = "item"  # created, its status or assignee changed
    FOLLOW = "follow"
    SETTINGS = "settings"  # workspace settings or a person's notification settings
    AUTOMATION = "automation"
    TEMPLATE = "template"
    SESSION = "session"  # a person's device session ended: their open event streams re-check


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One entry of the change feed, from this process or another. `position` only grows, in
    the order changes were committed: "everything past N" misses nothing."""

    position: int
    kind: ChangeKind
    conversation_id: int | None
    person_id: int | None
    # Which thing changed, where the kind names one: a message (MESSAGE), an item (ITEM,
    # FOLLOW), a session (SESSION). The event stream describes it without another call.
    subject_id: int | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PostResult:
    message_id: int
    conversation_id: int
    recipients: tuple[int, ...]
    changes: Changes


@dataclass(frozen=True, slots=True)
class EmailLogEntry:
    """One line of Incoming & Outgoing (M6)."""

    id: int
    direction: str
    kind: str
    status: str
    from_addr: str
    to_addrs: tuple[str, ...]
    subject: str
    message_id: str | None
    reason: str | None
    reply: str | None
    action: str | None
    item_number: int | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class BounceInfo:
    """What delivery reports said about one address (E7); `blocked_at`: no email goes to it
    until an administrator clears it."""

    address: str
    hard_bounces: int
    soft_bounces: int
    last_status: str
    last_reason: str
    last_at: datetime
    blocked_at: datetime | None
