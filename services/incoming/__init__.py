"""Incoming email (I1, I4, I6, I7): parsing, loop and flood rules, and the IMAP reader."""

from __future__ import annotations

from services.incoming.imap import ImapCursor, ImapReader, ImapSettings, MemoryCursor
from services.incoming.loops import SenderHold, loop_reason
from services.incoming.parse import ParsedMail, parse_mail

__all__ = [
    "ImapCursor",
    "ImapReader",
    "ImapSettings",
    "MemoryCursor",
    "ParsedMail",
    "SenderHold",
    "loop_reason",
    "parse_mail",
]
