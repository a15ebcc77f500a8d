"""The new text of a reply (I4): quoted history and signatures go, new text stays wherever it is.

Replies come top-posted (new text, then the history), bottom-posted (the history, then the new
text) and inline (answers between quoted lines), from every mail client in many languages.
The text is read line by line:

1. History that is not marked with ">" is cut from its first line to the end: an "Original
   Message" or forward separator, an Outlook header block (From:/Sent:/To:, in six
   languages), or a dated "On …, X wrote:" that no quote follows.
2. A signature is cut from its first line to the end: "-- ", "Sent from my …" and the like.
3. Quoted lines, and the "On …, X wrote:" line that introduces them, are dropped; each dropped
   block leaves a paragraph break, so inline answers stay apart.
4. A closing ("Best regards," and a name) ends the text, unless nothing would be left.

Every line is matched by anchored patterns over a bounded slice of it, so the time is linear in
the text: a crafted "On a a a … wrote" body costs what any body of its size costs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["extract_reply"]

_SLICE = 400  # the longest attribution, separator or header line worth reading
_WRAP = 3  # an attribution may be wrapped over this many lines

_SEPARATOR = re.compile(
    r"""\s*(?:
        -{2,}\s*(?:Original\ Message|Forwarded\ message|Ursprüngliche\ Nachricht
          |Weitergeleitete\ Nachricht|Message\ d'origine|Message\ transféré|Mensaje\ original
          |Mensaje\ reenviado|Messaggio\ originale|Messaggio\ inoltrato|Oorspronkelijk\ bericht
          |Doorgestuurd\ bericht)\s*-{2,}
      | Begin\ forwarded\ message:
      | Anfang\ der\ weitergeleiteten\ Nachricht:
      | Début\ du\ message\ réexpédié\ ?:
      | _{20,}
    )\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_SIGNATURE = re.compile(
    r"""\s*(?:
        --\ ?|__
      | (?:Sent\ from\ my|Sent\ with|Get\ Outlook\ for|Gesendet\ von\ meinem|Envoyé\ de\ mon
          |Enviado\ desde\ mi|Inviato\ da|Verzonden\ vanaf\ mijn|Verstuurd\ vanaf\ mijn)\ \S.{0,80}
      | Von\ meinem\ \S.{0,60}\ gesendet\.?
    )\s*""",
    re.IGNORECASE | re.VERBOSE,
)
# An Outlook header block: a From line, then a date line and a To/Subject line close below.
_FIELD = re.compile(
    r"\s*\**(?P<name>From|Von|De|Da|Van|Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Inviato"
    r"|Data|Verzonden|To|An|À|Para|A|Aan|Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp)"
    r"\**\s?:",
    re.IGNORECASE,
)
_FROM_FIELDS = frozenset({"from", "von", "de", "da", "van"})
_DATE_FIELDS = frozenset(
    {"sent", "date", "gesendet", "datum", "envoyé", "enviado", "fecha", "inviato", "data"}
    | {"verzonden"}
)
_TO_FIELDS = frozenset(
    {"to", "an", "à", "para", "a", "aan", "subject", "betreff", "objet", "asunto", "oggetto"}
    | {"onderwerp"}
)
# "… wrote:" in the languages people write to us in; the line ends with the colon.
_WROTE = re.compile(
    r"\b(?:wrote|writes|schrieb|a\s+écrit|escribió|escribio|ha\s+scritto|scrisse|schreef"
    r"|skrev|napsal|napisał)\b",
    re.IGNORECASE,
)
_MUTT = re.compile(r"\*\s.{1,200}\[[^\]]{1,40}\]:\s*")  # mutt's "* Name <addr> [date]:"
_OPENER = re.compile(r"\s*(?:On|Am|Le|El|Il|Op|Den|Dne)\s", re.IGNORECASE)
_CLOSING = re.compile(
    r"""\s*(?:best\ regards|kind\ regards|warm\ regards|regards|best\ wishes|best|cheers|thanks
      |thank\ you|many\ thanks|mit\ freundlichen\ grüßen|mit\ freundlichen\ grüssen
      |freundliche\ grüße|viele\ grüße|beste\ grüße|liebe\ grüße|grüße|gruß|mfg|lg
      |cordialement|bien\ cordialement|salutations|saludos|un\ saludo|atentamente
      |cordiali\ saluti|saluti|met\ vriendelijke\ groet|vriendelijke\ groet|groeten)\s*,?\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_MAX_AFTER_CLOSING = 4  # a name, a role, a phone number: more is text, not a closing


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution(text: str) -> bool:
    """Whether `text` (one line, or a wrapped one joined by spaces) reads "…, X wrote:"."""
    text = text.rstrip()
    if not text.endswith(":") or len(text) > _SLICE:
        return False
    return _WROTE.search(text) is not None or _MUTT.fullmatch(text) is not None


def _attribution_span(lines: Sequence[str], i: int) -> int:
    """How many lines from `i` form an attribution (0 when none): a wrapped one must open
    like one ("On …", "Am …"), so ordinary lines above a "wrote:" are never taken."""
    if _quoted(lines[i]) or not lines[i].strip():
        return 0
    if _attribution(lines[i][: _SLICE + 1]):
        return 1
    if _OPENER.match(lines[i]) is None:
        return 0
    joined = lines[i][:_SLICE]
    for span in range(2, _WRAP + 1):
        if i + span > len(lines) or not lines[i + span - 1].strip():
            return 0
        joined = f"{joined} {lines[i + span - 1].strip()[:_SLICE]}"
        if _attribution(joined):
            return span
    return 0


def _dated(lines: Sequence[str], i: int, span: int) -> bool:
    # A real attribution carries a date or an address; "As Ann wrote:" does not.
    return any(ch.isdigit() or ch == "@" for line in lines[i : i + span] for ch in line[:_SLICE])


def _header_block(lines: Sequence[str], i: int) -> bool:
    field = _FIELD.match(lines[i][:_SLICE])
    if field is None or field.group("name").lower() not in _FROM_FIELDS:
        return False
    names = set()
    for line in lines[i + 1 : i + 6]:
        found = _FIELD.match(line[:_SLICE])
        if found is not None:
            names.add(found.group("name").lower())
    return bool(names & _DATE_FIELDS) and bool(names & _TO_FIELDS)


def _next_text(lines: Sequence[str]) -> list[int]:
    """For each line, the index of the first non-blank line after it (len(lines) if none)."""
    after = [len(lines)] * len(lines)
    following = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        after[i] = following
        if lines[i].strip():
            following = i
    return after


def _new_lines(lines: Sequence[str]) -> list[str]:
    """Steps 1-3: the unquoted new lines, a blank line where quoted history was."""
    after = _next_text(lines)
    kept: list[str] = []
    dropped = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _quoted(line):
            i, dropped = i + 1, True
            continue
        head = line[:_SLICE]
        if _SEPARATOR.fullmatch(head) or _SIGNATURE.fullmatch(head) or _header_block(lines, i):
            break
        span = _attribution_span(lines, i)
        if span:
            end = i + span - 1
            if after[end] < len(lines) and _quoted(lines[after[end]]):
                i, dropped = end + 1, True  # it introduces a quote: both go
                continue
            if _dated(lines, i, span):
                break  # "On …, X wrote:" over unquoted history
        if dropped and line.strip():
            kept.append("")
        dropped = False
        kept.append(line.rstrip())
        i += 1
    return kept


def _without_closing(lines: list[str]) -> list[str]:
    """Step 4: cut at a closing followed by a few short lines, if text stands before it."""
    tail = 0
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].strip():
            continue
        if _CLOSING.fullmatch(lines[i][:_SLICE]):
            if any(line.strip() for line in lines[:i]):
                return lines[:i]
            return lines
        tail += 1
        if tail > _MAX_AFTER_CLOSING:
            return lines
    return lines


def _tidy(lines: Sequence[str]) -> str:
    out: list[str] = []
    for line in lines:
        if not line.strip():
            if out and out[-1]:
                out.append("")
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def extract_reply(text: str) -> str:
    """The new text of a mail body; "" when everything in it is quoted. Never raises."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _tidy(_without_closing(_new_lines(lines)))
