"""C1: the chat link in an email to a customer: a signed, expiring, single-use token that
names one customer and one conversation.

`<conversation>.<person>.<expires, Unix seconds>.<nonce>.<signature>`: the signature is a
truncated HMAC-SHA256 under the workspace's key, in its own domain-separation context (a
reply or bounce token never passes for a link). The nonce makes each link unique, so the
server can refuse a second use (it records the nonce when the link is exchanged).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["LINK_LIFETIME", "ChatLink", "chat_url", "make_chat_link", "read_chat_link"]

LINK_LIFETIME: Final = timedelta(days=7)
_CONTEXT: Final = b"deskbell/chat-link/v1:"
_SIGNATURE_BYTES: Final = 18  # 144 bits, 24 characters
_ID = r"([1-9][0-9]{0,17})"
_TOKEN_RE: Final = re.compile(
    rf"{_ID}\.{_ID}\.([1-9][0-9]{{0,11}})\.([0-9a-f]{{16}})\.([A-Za-z0-9_-]{{24}})"
)


@dataclass(frozen=True, slots=True)
class ChatLink:
    conversation_id: int
    person_id: int
    expires_at: datetime
    nonce: str


def _signature(key: bytes, body: str) -> str:
    if not key:
        raise ValueError("the link key must not be empty")
    mac = hmac.new(key, _CONTEXT + body.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_SIGNATURE_BYTES]).decode("ascii")


def make_chat_link(*, key: bytes, conversation_id: int, person_id: int, now: datetime) -> str:
    """A new token for `person_id` to open `conversation_id`, valid for LINK_LIFETIME."""
    if conversation_id < 1 or person_id < 1:
        raise ValueError("ids must be positive")
    expires = int((now + LINK_LIFETIME).timestamp())
    body = f"{conversation_id}.{person_id}.{expires}.{secrets.token_hex(8)}"
    return f"{body}.{_signature(key, body)}"


def read_chat_link(token: str, *, key: bytes, now: datetime) -> ChatLink | None:
    """The link a genuine, unexpired token names; None if malformed, altered or expired."""
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        return None
    body = token.rpartition(".")[0]
    if not hmac.compare_digest(_signature(key, body), match.group(5)):
        return None
    expires_at = datetime.fromtimestamp(int(match.group(3)), tz=UTC)
    if now >= expires_at:
        return None
    return ChatLink(
        conversation_id=int(match.group(1)),
        person_id=int(match.group(2)),
        expires_at=expires_at,
        nonce=match.group(4),
    )


def chat_url(entry: str, *, key: bytes, conversation_id: int, person_id: int, now: datetime) -> str:
    """The link for an email to a customer (`entry`: `<public url>/chat/enter`, `MailIdentity.
    chat_entry`); "" when there is no entry (the chat is off or its address unknown)."""
    if not entry:
        return ""
    token = make_chat_link(key=key, conversation_id=conversation_id, person_id=person_id, now=now)
    return f"{entry}?t={token}"
