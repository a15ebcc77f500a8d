"""E4, E11: what one notification email holds, and its MIME form.

`plan_notification_email` decides every header and which messages the email carries;
`build_mime` turns the plan plus rendered bodies into bytes (`mime.compose`). Every header value
built from people's text passes through `clean_header_text` (E11), whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.domain.headers import (
    HeaderInjectionError,
    clean_header_text,
    format_address,
    normalize_address,
    normalize_domain,
)
from services.domain.mime import compose
from services.domain.model import ConversationKind, Person
from services.domain.recipients import may_see

__all__ = [
    "AUTO_HEADERS",
    "LOOP_TAG",
    "MAX_CONTEXT_MESSAGES",
    "MAX_REFERENCES",
    "SUBJECT_MAX_CHARS",
    "MessageView",
    "NotificationEmail",
    "build_mime",
    "plan_notification_email",
]

LOOP_TAG = "deskbell"  # I6 recognises our own mail by this X-Loop value
MAX_CONTEXT_MESSAGES = 3
MAX_REFERENCES = 20
SUBJECT_MAX_CHARS = 200
# E4: mark the mail as automatic so autoresponders stay quiet (and I6 loops cannot start).
# No Precedence header: it is obsolete, and "bulk" makes some servers drop the mail.
AUTO_HEADERS: tuple[tuple[str, str], ...] = (
    ("Auto-Submitted", "auto-generated"),
    ("X-Auto-Response-Suppress", "All"),
    ("X-Loop", LOOP_TAG),
)

_UID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# A plain <left@right> id: printable ASCII, no brackets inside, no encoded-word marker.
_MSG_ID_RE = re.compile(r"<(?!.*=\?)[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[A-Za-z0-9.-]{1,253}>")


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message as an email shows it: text is plain, never HTML."""

    id: int
    author_name: str
    author_email: str
    created_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class NotificationEmail:
    """Everything one notification email holds, before rendering its bodies."""

    subject: str
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    from_addr: str
    to_addr: str
    reply_to: str
    headers: tuple[tuple[str, str], ...]
    new_messages: tuple[MessageView, ...]
    context_messages: tuple[MessageView, ...]
    item_number: int | None
    item_title: str
    conversation_kind: ConversationKind
    recipient_name: str
    chat_url: str = ""  # C1: a customer's link into the chat (empty: none)


def _order(m: MessageView) -> tuple[datetime, int]:
    return (m.created_at, m.id)


def _subject(
    *, kind: ConversationKind, item_number: int | None, item_title: str, author: str
) -> str:
    # Stable per conversation (E4): it depends on the item, never on the message text.
    if item_number is not None:
        subject = f"[#{item_number}] {clean_header_text(item_title)}"
    elif kind is ConversationKind.DIRECT:
        subject = f"Message from {clean_header_text(author, max_len=100)}"
    else:
        subject = clean_header_text(item_title) or "New message"
    return clean_header_text(subject, max_len=SUBJECT_MAX_CHARS)


def plan_notification_email(
    *,
    recipient: Person,
    conversation_kind: ConversationKind,
    item_number: int | None,
    item_title: str,
    new_messages: Sequence[MessageView],
    earlier_messages: Sequence[MessageView],
    token: str,
    email_uid: str,
    domain: str,
    from_name: str,
    from_addr: str,
    previous_message_ids: Sequence[str],
    chat_url: str = "",
) -> NotificationEmail:
    """E4: plan one email for one recipient and conversation.

    `email_uid` is fixed when the email is queued, so a resend keeps its Message-ID (E7).
    `earlier_messages` are candidates for context; the latest three older than every new
    message are kept. `previous_message_ids` are this recipient's earlier emails about the
    conversation, oldest first, for threading.
    """
    if not new_messages:
        raise ValueError("an email needs at least one new message")
    if not may_see(recipient, conversation_kind):
        # R2 belt and braces: the recipient rules should never have got us here.
        raise ValueError(f"person {recipient.id} may not receive {conversation_kind} messages")
    if not _TOKEN_RE.fullmatch(token):
        raise HeaderInjectionError(f"tracking token {token!r} is not safe in a header")
    if not _UID_RE.fullmatch(email_uid):
        raise HeaderInjectionError(f"email uid {email_uid!r} is not safe in a Message-ID")
    id_domain = normalize_domain(domain)

    new = tuple(sorted(new_messages, key=_order))
    first_new = _order(new[0])
    new_ids = {m.id for m in new}
    older = [m for m in earlier_messages if m.id not in new_ids]
    if any(_order(m) > first_new for m in older):
        raise ValueError("context messages must be older than the new messages")
    context = tuple(sorted(older, key=_order)[-MAX_CONTEXT_MESSAGES:])

    sender = normalize_address(from_addr)
    local, _, sender_domain = sender.partition("@")
    reply_addr = f"{local}+{token}@{sender_domain}"

    # Threading ids come from our own rows, but never let a malformed one into a header.
    thread = tuple(i for i in previous_message_ids if _MSG_ID_RE.fullmatch(i))[-MAX_REFERENCES:]

    return NotificationEmail(
        subject=_subject(
            kind=conversation_kind,
            item_number=item_number,
            item_title=item_title,
            author=new[0].author_name,
        ),
        message_id=f"<{token}.{email_uid}@{id_domain}>",
        in_reply_to=thread[-1] if thread else None,
        references=thread,
        from_addr=format_address(name=from_name, address=sender),
        to_addr=format_address(name=recipient.name, address=recipient.email),
        reply_to=format_address(name=from_name, address=reply_addr),
        headers=AUTO_HEADERS,
        new_messages=new,
        context_messages=context,
        item_number=item_number,
        item_title=item_title,
        conversation_kind=conversation_kind,
        recipient_name=recipient.name,
        chat_url=chat_url,
    )


def build_mime(
    email: NotificationEmail, *, text_body: str, html_body: str, date: datetime
) -> bytes:
    """The email's bytes: plain text with an HTML alternative, every header of the plan."""
    headers: list[tuple[str, str]] = [
        # The plan built these with format_address; compose re-checks them all the same.
        ("From", email.from_addr),
        ("To", email.to_addr),
        ("Reply-To", email.reply_to),
        ("Subject", clean_header_text(email.subject, max_len=SUBJECT_MAX_CHARS)),
        ("Message-ID", _checked_id(email.message_id)),
    ]
    if email.in_reply_to is not None:
        headers.append(("In-Reply-To", _checked_id(email.in_reply_to)))
    if email.references:
        headers.append(("References", " ".join(_checked_id(i) for i in email.references)))
    headers.extend((name, clean_header_text(value)) for name, value in email.headers)
    return compose(headers=headers, date=date, text=text_body, html=html_body)


def _checked_id(message_id: str) -> str:
    if not _MSG_ID_RE.fullmatch(message_id):
        raise HeaderInjectionError(f"{message_id!r} is not a valid Message-ID")
    return message_id
