"""E7: a bounce address that names the email it belongs to (VERP).

Each email leaves with the envelope sender `<from-local>+b<email id>-<signature>@<from-domain>`,
the From address plus-addressed, so a delivery status notification comes back to the mailbox
Deskbell already reads, addressed to a token that names the email. The signature (a truncated
HMAC over the email's id and its random uid) means a forged or stale token never matches: an id
reused after the log's purge carries another uid. The From header is never changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["bounce_address", "bounce_signature_ok", "find_bounce_tokens"]

_SIGNATURE_CHARS = 16  # 80 bits, as for reply tokens
_CONTEXT = b"deskbell/bounce-token/v1:"
_LOCAL_MAX = 64  # RFC 5321 §4.5.3.1.1
_FIND_RE = re.compile(
    rf"\+b(0|[1-9][0-9]{{0,17}})-([a-z2-7]{{{_SIGNATURE_CHARS}}})@", re.IGNORECASE
)
_MAX_SCAN_CHARS = 20_000


def _signature(key: bytes, email_id: int, email_uid: str) -> str:
    if not key:
        raise ValueError("the token key must not be empty")
    mac = hmac.new(key, _CONTEXT + f"{email_id}:{email_uid}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()).decode("ascii")[:_SIGNATURE_CHARS].lower()


def bounce_address(*, from_addr: str, key: bytes, email_id: int, email_uid: str) -> str:
    """The envelope sender for one email; `from_addr` itself when the token would not fit."""
    local, at, domain = from_addr.rpartition("@")
    if not at or not local:
        return from_addr
    tagged = f"{local}+b{email_id}-{_signature(key, email_id, email_uid)}"
    return f"{tagged}@{domain}" if len(tagged) <= _LOCAL_MAX else from_addr


def find_bounce_tokens(text: str) -> list[tuple[int, str]]:
    """Every (email id, signature) that looks like a bounce token in `text`; check each with
    `bounce_signature_ok` against the email's uid before trusting it."""
    return [
        (int(m.group(1)), m.group(2).lower()) for m in _FIND_RE.finditer(text[:_MAX_SCAN_CHARS])
    ]


def bounce_signature_ok(*, key: bytes, email_id: int, email_uid: str, signature: str) -> bool:
    return hmac.compare_digest(_signature(key, email_id, email_uid), signature.lower())
