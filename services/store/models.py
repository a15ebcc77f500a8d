"""The tables. Portable SQL only: the same models run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Automation",
    "Base",
    "Change",
    "ChatCode",
    "ChatLinkUse",
    "ChatPresence",
    "Conversation",
    "ConversationMember",
    "Counter",
    "Delivery",
    "DeviceSession",
    "Email",
    "EmailBody",
    "EmailTemplate",
    "EmailThread",
    "Follower",
    "ImapCursor",
    "Item",
    "MailBounce",
    "Message",
    "PasswordReset",
    "Person",
    "Setting",
    "SignInThrottle",
    "SystemEmail",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite stores no zone; PostgreSQL would convert to the session's zone. Storing naive UTC
    everywhere keeps comparisons and indexes identical on both.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # PersonKind
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime]
    # R5, N6 and the delay of E1 ("never" is notify_email off).
    notify_in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_sound: Mapped[bool] = mapped_column(Boolean, default=True)
    delay_s: Mapped[int | None] = mapped_column(Integer, default=None)  # NULL: the workspace's
    dnd_until: Mapped[datetime | None] = mapped_column(default=None)
    dnd_weekly: Mapped[list[Any]] = mapped_column(default=list)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(40), default="open")
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Follower(Base):
    __tablename__ = "followers"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True, index=True)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("item_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # ConversationKind
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), default=None)
    # "lowid:highid" for a direct conversation between two users, so there is only one.
    direct_key: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    created_at: Mapped[datetime]
    last_message_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    last_message_id: Mapped[int | None] = mapped_column(Integer, default=None)


class ConversationMember(Base):
    """The two people of a direct conversation (item conversations use followers)."""

    __tablename__ = "conversation_members"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True, index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), default=None)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # person | automation | system | email: M3 needs to know what wrote a message.
    source: Mapped[str] = mapped_column(String(16), default="person")
    automation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    email_id: Mapped[int | None] = mapped_column(Integer, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Delivery(Base):
    """One message for one recipient: notified, seen, emailed, or suppressed and why."""

    __tablename__ = "deliveries"
    # The partial indexes' PostgreSQL `postgresql_where` is in the migrations (0001, 0007) that
    # build the schema there: naming it here would load the PostgreSQL dialect on every start.
    __table_args__ = (
        UniqueConstraint("message_id", "recipient_id"),
        # The scheduler's one question: the earliest pending due time.
        Index("ix_deliveries_state_due_at", "state", "due_at"),
        # Unseen counts per person and conversation, over unseen rows only.
        Index(
            "ix_deliveries_unseen",
            "recipient_id",
            "conversation_id",
            sqlite_where=text("seen_at IS NULL"),
        ),
        Index("ix_deliveries_recipient_conversation", "recipient_id", "conversation_id", "state"),
        # The scheduler's due query (services/fallback.py): pending rows only, covering.
        Index(
            "ix_deliveries_pending_due",
            "due_at",
            "recipient_id",
            "conversation_id",
            sqlite_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # DeliveryState
    seen_at: Mapped[datetime | None] = mapped_column(default=None)
    notified_at: Mapped[datetime | None] = mapped_column(default=None)
    email_id: Mapped[int | None] = mapped_column(ForeignKey("emails.id"), default=None, index=True)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)


class EmailThread(Base):
    """Per recipient and conversation: the last email's time and the ids to thread on (E2, E4)."""

    __tablename__ = "email_threads"

    recipient_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    last_emailed_at: Mapped[datetime | None] = mapped_column(default=None)
    message_ids: Mapped[list[Any]] = mapped_column(default=list)


class Email(Base):
    """The durable outbox and the log of incoming and outgoing mail (E6, M6)."""

    __tablename__ = "emails"
    __table_args__ = (
        Index("ix_emails_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_emails_created_at", "created_at"),
        # The outgoing caps of I6 count recent emails per conversation and per recipient.
        Index("ix_emails_conversation_id_created_at", "conversation_id", "created_at"),
        Index("ix_emails_recipient_id_created_at", "recipient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # notification | template | system | test | incoming
    status: Mapped[str] = mapped_column(String(16))  # EmailStatus
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(300), index=True, default=None)
    from_addr: Mapped[str] = mapped_column(String(320))
    to_addrs: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(500), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    # The email's bytes live in `email_bodies`: the outbox's claim and outcome UPDATEs rewrite
    # this row, and keeping kilobytes of MIME out of it keeps those writes small (issue 9).
    conversation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    recipient_id: Mapped[int | None] = mapped_column(Integer, default=None)
    item_number: Mapped[int | None] = mapped_column(Integer, default=None)
    template_name: Mapped[str | None] = mapped_column(String(100), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    reply: Mapped[str | None] = mapped_column(Text, default=None)  # the server's last words
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    action: Mapped[str | None] = mapped_column(String(200), default=None)  # incoming: what it did
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class EmailBody(Base):
    """An email's bytes (at most one row per email; none for an email never composed).

    Outgoing: the exact bytes fixed at queue time, so a resend carries the same Message-ID.
    Incoming: the original mail as received (I4: the original stays in the log). Removed with
    its email (ON DELETE CASCADE; SQLite's connections turn `foreign_keys` on)."""

    __tablename__ = "email_bodies"

    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Change(Base):
    """An append-only feed of what changed, read by every running process (events.py)."""

    __tablename__ = "changes"
    # Ids are never handed out twice, even after the purge empties the table: a running
    # process that saw id N ignores anything at or below N (SQLite reuses ids without this).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Where the change stands in commit order (the feed reads by it): see `Counter`.
    position: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True, unique=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    conversation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    person_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # The message, item or session the change is about (ChangeEvent.subject_id).
    subject_id: Mapped[int | None] = mapped_column(Integer, default=None)


# --- Messaging Center (issue 4: M1-M5) ------------------------------------------------------
# Appended in its own section; migration 0002_messaging_center creates these tables.


class Automation(Base):
    """A workflow rule (M1, M2): on a trigger, if its conditions hold, run its actions.

    `conditions` maps a condition name to the wanted value; `actions` is a list of
    `{"kind": "message", "conversation": "internal"|"external"}` and
    `{"kind": "email", "to": "followers"|"requester"|"assignee", "template": NAME}`.
    `text` is the message the message actions insert (a sandboxed template), or for the
    critical new-message automation the intro line of its notification email (E5).
    """

    __tablename__ = "automations"
    __table_args__ = (Index("ix_automations_trigger_enabled", "trigger", "enabled"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(40))
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EmailTemplate(Base):
    """An email template (M4, M5): subject, plain text and HTML, all sandboxed Jinja2."""

    __tablename__ = "email_templates"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # notification | automation | system
    description: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class SystemEmail(Base):
    """A system event's email (M5) and whether it is sent; its template has the same name."""

    __tablename__ = "system_emails"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class PasswordReset(Base):
    """The one live reset code of a person (M5, T4): only its hash is kept."""

    __tablename__ = "password_resets"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


# M6: the log view filters by status and direction within the 72-hour window, newest first.
Index("ix_emails_status_created_at", Email.status, Email.created_at)
Index("ix_emails_direction_created_at", Email.direction, Email.created_at)


# --- Incoming mail (issue 5: I1, I6) ---------------------------------------------------------
# Appended in its own section; migration 0003_incoming creates the table and the index.


class ImapCursor(Base):
    """Where the IMAP reader stands in one account's folder (I1): nothing taken twice or lost."""

    __tablename__ = "imap_cursors"

    account: Mapped[str] = mapped_column(String(400), primary_key=True)  # user@host:port
    folder: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


# I6: the sender hold is rebuilt from one sender's recent incoming log rows (migration 0009).
Index("ix_emails_sender_direction_created_at", Email.from_addr, Email.direction, Email.created_at)


class ImapReaderLease(Base):
    """Which process reads one mailbox (I1, issue 9): one process of a workspace at a time.
    Migration 0007_mail_engine creates it; services/incoming/reader_lease.py uses it."""

    __tablename__ = "imap_reader_leases"

    account: Mapped[str] = mapped_column(String(400), primary_key=True)  # user@host:port
    owner: Mapped[str | None] = mapped_column(String(100), default=None)  # host:pid:nonce
    until: Mapped[datetime | None] = mapped_column(default=None)  # the database's clock


# --- Bounces (issue 8: E7) -------------------------------------------------------------------
# Appended in its own section; migration 0005_bounces creates the table.


class MailBounce(Base):
    """What delivery status notifications said about one address (E7): repeated hard
    bounces stop emails to it until an administrator clears it. Never purged."""

    __tablename__ = "mail_bounces"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lowercased
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)  # 5.x.x, since cleared
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)  # 4.x.x, never counted
    last_status: Mapped[str] = mapped_column(String(16))
    last_reason: Mapped[str] = mapped_column(String(500))
    last_at: Mapped[datetime]
    blocked_at: Mapped[datetime | None] = mapped_column(default=None)


# --- Counters (issue 9: T1, T2) -------------------------------------------------------------
# Appended in its own section; migration 0006_change_positions creates the table.


class Counter(Base):
    """A number handed out in commit order: "changes" (the feed's positions) and "items" (item
    numbers). Taken with `UPDATE ... SET value = value + k RETURNING value`, whose row lock
    lasts until the taking transaction ends (services/store/counters.py). Never goes back."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


# --- Accounts and sign-in (issue 10: T4) ----------------------------------------------------
# Appended in its own section; migration 0008_accounts creates the tables. The password hash
# itself (argon2id) is `Person.password_hash`, there since the first schema.


class DeviceSession(Base):
    """One signed-in device of a user (T4): only the SHA-256 of its token is kept. Ending a
    session (sign-out, a reset password, an administrator) sets `ended_at`; it never comes back."""

    __tablename__ = "device_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256
    device: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64))  # the client's address at sign-in
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]  # written at most once a minute
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class SignInThrottle(Base):
    """Failed sign-ins of one account (by the address typed, known or not) or one client
    address (an IPv6 client by its /64) within the window (T4); see services/domain/throttle.py."""

    __tablename__ = "sign_in_throttles"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # "account" or "address"
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(index=True)


# --- The customer chat (issue 12: C1, C2) ------------------------------------------------------
# Appended in its own section; migration 0013_chat creates the tables.


class ChatLinkUse(Base):
    """A chat link from an email that was exchanged for a session (C1): a link works once.
    Kept until the link would have expired anyway."""

    __tablename__ = "chat_link_uses"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ChatCode(Base):
    """The one live code emailed to an address from the chat's widget (C1): only its hash is
    kept, with the attempts at it and how many codes the address was sent lately (C3)."""

    __tablename__ = "chat_codes"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)  # codes sent since window_start
    window_start: Mapped[datetime] = mapped_column(index=True)


class ChatPresence(Base):
    """One open chat page of a customer (C2), alive while `expires_at` is ahead: every
    process that serves pages refreshes its own rows, so all of them agree who is in."""

    __tablename__ = "chat_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    session_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(index=True)
