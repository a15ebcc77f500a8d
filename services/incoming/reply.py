"""The new text of a reply (I4): quoted history and signatures stripped.

`mail-parser-reply` does the heavy lifting (many languages, Outlook and Gmail headers). A
small pass of our own runs first and cuts at the markers it misses or splits badly: Apple
Mail's forwarded block and wrapped "On …, X wrote:" lines, "-- " signatures, "Sent from my …",
and bottom-posted ">" quotes between the new lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

__all__ = ["DEFAULT_REPLY_LANGUAGES", "extract_reply"]

log = logging.getLogger(__name__)

DEFAULT_REPLY_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl")

# A line that starts quoted history: everything from it to the end is old text.
_CUT_LINE = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:Original\ Message|Forwarded\ message|Ursprüngliche\ Nachricht)\s*-{2,}
      | Begin\ forwarded\ message:
      | _{20,}
      | Sent\ from\ my\ \S.*
      | Get\ Outlook\ for\ \S.*
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# "On <date>, <name> wrote:" possibly wrapped over up to three lines.
_ON_WROTE = re.compile(r"^\s*On\s.{0,300}?\bwrote:\s*$", re.IGNORECASE | re.DOTALL)
_HEADER_FIELD = re.compile(r"^\s*\**(From|Sent|Date|To|Cc|Subject)\**\s*:", re.IGNORECASE)


def _cut_index(lines: Sequence[str]) -> int:
    """Index of the first line of quoted history or signature, or len(lines)."""
    for i, line in enumerate(lines):
        stripped = line.rstrip()
        if stripped in {"--", "-- "} or line == "-- ":
            return i
        if _CUT_LINE.match(stripped):
            return i
        if stripped.lstrip().lower().startswith("on "):
            for span in (1, 2, 3):
                if _ON_WROTE.match("\n".join(lines[i : i + span])):
                    return i
        # Outlook's header block: From: followed closely by Sent:/Date: and To:/Subject:.
        field = _HEADER_FIELD.match(line)
        if field is not None and field.group(1).lower() == "from":
            names = {m.group(1).lower() for m in map(_HEADER_FIELD.match, lines[i : i + 6]) if m}
            if {"sent", "date"} & names and {"to", "subject"} & names:
                return i
    return len(lines)


_ATTRIBUTION = re.compile(r"\b(wrote|writes|schrieb|a écrit|escribió|scrisse):\s*$", re.IGNORECASE)


def _drop_quoted(lines: Sequence[str]) -> list[str]:
    """Lines without ">" quotes, and without the "X wrote:" line that introduces one."""
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith(">"):
            continue
        if _ATTRIBUTION.search(line):
            following = next((n for n in lines[i + 1 :] if n.strip()), "")
            if following.lstrip().startswith(">"):
                continue
        kept.append(line)
    return kept


def _tidy(lines: Sequence[str]) -> str:
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def extract_reply(text: str, *, languages: Sequence[str] = DEFAULT_REPLY_LANGUAGES) -> str:
    """The new text of a mail body; "" when everything in it is quoted. Never raises."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ours = _tidy(_drop_quoted(lines[: _cut_index(lines)]))
    if not ours:
        return ""
    try:
        # Imported at the first mail (~20 ms): a start that reads no mail never pays for it.
        from mailparser_reply.parser import EmailMessage

        message = EmailMessage(text=ours, languages=list(languages), keep_hyphen_lists=True)
        replies = message.read().replies
        theirs = replies[0].body if replies else ours
    except Exception:  # a library bug must never cost us the mail
        log.exception("mail-parser-reply failed; using the simple reply extraction")
        return ours
    # The library strips every line's indentation; keep our lines where it only trimmed.
    return _tidy(theirs.split("\n")) if theirs.strip() else ours
