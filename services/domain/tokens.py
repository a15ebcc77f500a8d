"""I2: signed tracking tokens that lead a reply back to its conversation.

A token names a conversation and the recipient it was emailed to, and carries a truncated
HMAC-SHA256 so that a forged or foreign token never threads. It is lowercase letters, digits
and '-', so it survives in an email local part (`support+c12r7-...@x.com`) and in a
Message-ID (`<c12r7-....e99@deskbell.x.com>`), even where mail systems change case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["SIGNATURE_CHARS", "find_token", "make_token", "read_token"]

SIGNATURE_CHARS = 16  # 80 bits of base32: far beyond guessing, short enough for an address
# Domain separation: the same key may sign other things later without tokens colliding.
_CONTEXT = b"deskbell/reply-token/v1:"
_ID = r"(0|[1-9][0-9]{0,17})"  # canonical: no leading zeros, fits in 64 bits
_SIG = rf"([a-z2-7]{{{SIGNATURE_CHARS}}})"
_TOKEN_RE = re.compile(rf"c{_ID}r{_ID}-{_SIG}", re.IGNORECASE)
# Inside a longer text, a token stands on its own: no letter or digit glued to either end.
_FIND_RE = re.compile(rf"(?<![a-z0-9])c{_ID}r{_ID}-{_SIG}(?![a-z0-9])", re.IGNORECASE)
_MAX_SCAN_CHARS = 20_000  # a References header of many ids; never scan a whole message


def _signature(key: bytes, conversation_id: int, recipient_id: int) -> str:
    if not key:
        raise ValueError("the token key must not be empty")
    mac = hmac.new(key, _CONTEXT + f"c{conversation_id}r{recipient_id}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()).decode("ascii")[:SIGNATURE_CHARS].lower()


def make_token(*, key: bytes, conversation_id: int, recipient_id: int) -> str:
    """A short signed token, e.g. `c12r7-k3j5...` (16 signature characters)."""
    if conversation_id < 0 or recipient_id < 0:
        raise ValueError("ids must not be negative")
    sig = _signature(key, conversation_id, recipient_id)
    return f"c{conversation_id}r{recipient_id}-{sig}"


def _verify(match: re.Match[str], key: bytes) -> tuple[int, int] | None:
    conversation_id, recipient_id = int(match.group(1)), int(match.group(2))
    expected = _signature(key, conversation_id, recipient_id)
    if hmac.compare_digest(expected, match.group(3).lower()):
        return conversation_id, recipient_id
    return None


def read_token(token: str, *, key: bytes) -> tuple[int, int] | None:
    """(conversation_id, recipient_id) of a genuine token; None if malformed or forged."""
    match = _TOKEN_RE.fullmatch(token.strip())
    return _verify(match, key) if match else None


def find_token(text: str, *, key: bytes) -> tuple[int, int] | None:
    """The first genuine token inside an address, a Message-ID or a header value."""
    for match in _FIND_RE.finditer(text[:_MAX_SCAN_CHARS]):
        found = _verify(match, key)
        if found is not None:
            return found
    return None
