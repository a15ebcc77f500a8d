"""Incoming mail parsed into plain data (I4, I7): never raises, whatever arrives.

The stdlib `compat32` parser is used because it tolerates anything and leaves decoding to us:
header values are decoded here (encoded words, stray 8-bit bytes, line breaks), the body
text comes from the first text/plain part (else text/html converted), and nothing else is
decoded, so a huge attachment costs only its parse.

Every str in a ParsedMail can be stored, whatever arrived: decoding never yields a lone
surrogate (a UTF-7 or crafted body can encode one) or a NUL, and charsets that interpret
escapes rather than encode text (`unicode-escape`, `punycode`...) are treated as unknown.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import Policy, compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from services.incoming.html_text import html_to_text
from services.incoming.reply import extract_reply

__all__ = [
    "MAX_HEADER_CHARS",
    "MAX_PARSE_BYTES",
    "ParsedMail",
    "normalize_address",
    "parse_mail",
    "storable",
]

MAX_HEADER_CHARS = 4_000  # per header value; beyond this it is garbage or an attack
_MAX_HEADERS = 500
_MAX_ADDRESS = 254
_MAX_RAW_HEADER = MAX_HEADER_CHARS * 2  # before unfolding and decoding
_MAX_PARTS = 500
# The parser reads at most this much of a mail: the text we keep (the first text part, at
# most 100,000 characters) comes before any attachment in every client's layout, and this
# bounds the worst crafted mail (millions of header lines) to about a second of CPU.
MAX_PARSE_BYTES = 4_000_000
_FEED_CHUNK = 8_192
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\]+$")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CP1252_ALIASES = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii"})
# Codecs Python offers that no mail is written in: they turn escapes into characters.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined"})
_SURROGATE = re.compile("[\ud800-\udfff]")
# RFC 2047: =?charset(*language)?Q|B?text?=; the text holds no "?" or space, so this is linear.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]{0,32})?\?([QqBb])\?([^?\s]*)\?=")
_QP_BYTE = re.compile(rb"=([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class ParsedMail:
    """One incoming email. Message ids are given without their angle brackets."""

    message_id: str | None
    from_addr: str | None
    from_name: str
    to_addrs: tuple[str, ...]
    cc_addrs: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    # Every header in order, decoded and on one line; names as sent.
    headers: tuple[tuple[str, str], ...]
    text: str
    # The new text only (I4); "" when the whole body is quoted history.
    reply_text: str
    raw_size: int
    defects: tuple[str, ...]
    # Content types of every MIME part, lowercased (delivery reports are found by these).
    content_types: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of a header (name matched case-insensitively), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_values(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == wanted)


def normalize_address(value: str) -> str | None:
    """A bare address, lowercased, if it looks like one (loosely: x@y.z, no spaces, at most
    254 characters as RFC 5321 allows)."""
    addr = value.strip().strip("<>").strip().lower()
    return addr if len(addr) <= _MAX_ADDRESS and _ADDRESS.match(addr) else None


def storable(text: str) -> str:
    """The text with lone surrogates as U+FFFD and NULs removed: any database takes it."""
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "")


def _unescape_8bit(value: str) -> str:
    # compat32 keeps raw 8-bit header bytes as surrogates: read them as UTF-8.
    try:
        return storable(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return storable(value)


def _codec(charset: str | None) -> str | None:
    """The codec for a declared charset, or None when it is unknown or no mail charset."""
    if not charset:
        return None
    # Like browsers: mail labelled Latin-1 or ASCII is in practice Windows-1252.
    if charset.lower() in _CP1252_ALIASES:
        return "cp1252"
    try:
        name = codecs.lookup(charset).name
    except (LookupError, TypeError, ValueError):
        return None
    return None if name in _NOT_CHARSETS else name


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Storable text from bytes in a declared charset; unknown charsets never fail."""
    codec = _codec(charset)
    if codec is not None:
        try:
            return storable(data.decode(codec, "replace"))
        except (LookupError, UnicodeError):
            pass  # not a text encoding (hex, rot13...) or one that refuses "replace": guess
    try:
        return storable(data.decode("utf-8"))
    except UnicodeDecodeError:
        return storable(data.decode("cp1252", "replace"))


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """The bytes an encoded word carries, or None if its text is not valid Q or B."""
    data = text.encode("utf-8", "replace")
    if encoding in "Qq":
        return _QP_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    try:
        return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return None


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded once; the text around them is kept exactly as sent.

    Adjacent words in one charset are joined before decoding (a character may be split
    between them) and the space between encoded words is dropped, as RFC 2047 says.
    """
    out: list[str] = []
    pending: tuple[str, bytearray] | None = None  # a charset and its bytes, not yet decoded
    end = 0
    for match in _ENCODED_WORD.finditer(value):
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            continue  # not a valid word: it stays in the text as sent
        charset = match.group(1).lower()
        between = value[end : match.start()]
        adjacent = pending is not None and not between.strip()
        if adjacent and pending is not None and pending[0] == charset:
            pending[1].extend(data)
        else:
            if pending is not None:
                out.append(_decode_bytes(bytes(pending[1]), pending[0]))
            if not adjacent:
                out.append(between)
            pending = (charset, bytearray(data))
        end = match.end()
    if pending is not None:
        out.append(_decode_bytes(bytes(pending[1]), pending[0]))
    out.append(value[end:])
    return "".join(out)


def _one_line(value: str) -> str:
    # Line breaks never survive into a header value (CVE-2024-6923 style smuggling).
    return _WS.sub(" ", value).strip()[:MAX_HEADER_CHARS]


def _addresses(values: list[str]) -> tuple[str, ...]:
    try:
        pairs = getaddresses(values)
    except Exception:
        return ()
    found: list[str] = []
    for _name, addr in pairs:
        normal = normalize_address(addr)
        if normal and normal not in found:
            found.append(normal)
    return tuple(found)


def _message_ids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSG_ID.findall(value or ""))


def _single_message_id(value: str | None) -> str | None:
    if not value:
        return None
    ids = _message_ids(value)
    if ids:
        return ids[0]
    bare = value.strip()
    return bare if bare and " " not in bare else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _payload_bytes(part: Message, max_chars: int) -> bytes:
    # Never decode more than the text we keep can need (4 encoded chars per kept char).
    limit = max_chars * 4 + 1024
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding not in {"base64", "quoted-printable"}:
        # 7bit/8bit/binary: compat32 gives back the bytes exactly as they arrived.
        data = part.get_payload(decode=True)
        return data[:limit] if isinstance(data, bytes) else b""
    try:
        payload = part.get_payload()
    except Exception:  # e.g. an RFC 2231 charset parameter compat32 cannot handle
        return b""
    if not isinstance(payload, str):
        return b""
    raw = payload[:limit].encode("ascii", "replace")
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return b""
    return quopri.decodestring(raw)


def _part_text(part: Message, max_chars: int) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _decode_bytes(_payload_bytes(part, max_chars), charset)


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";")[0].strip().lower()
    return disposition == "attachment"


def _body(msg: Message, max_chars: int) -> tuple[str, tuple[str, ...], list[str]]:
    """(text, content types of all parts, defects of all parts)."""
    plain: str | None = None
    html: str | None = None
    types: list[str] = []
    defects: list[str] = []
    for count, part in enumerate(msg.walk()):
        if count >= _MAX_PARTS:
            defects.append("TooManyParts")
            break
        ctype = _unescape_8bit(part.get_content_type())
        types.append(ctype)
        defects.extend(type(d).__name__ for d in part.defects)
        if part.is_multipart() or _is_attachment(part):
            continue
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part, max_chars)
        elif ctype == "text/html" and html is None:
            html = _part_text(part, max_chars)
    if plain is None and html is not None:
        plain = html_to_text(html[: max_chars * 4])
    if plain is None:
        # A multipart whose boundary never matches has no parts: show its body as text.
        data = msg.get_payload(decode=True)
        if isinstance(data, bytes) and msg.get_content_maintype() in {"multipart", "text"}:
            plain = _decode_bytes(data[: max_chars * 4], None)
    return plain or "", tuple(types), defects


def _clean_text(text: str, max_chars: int) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.strip("\n")[:max_chars]


def _message(raw: bytes) -> tuple[Message, list[str]]:
    """The parsed mail, fed in chunks and stopped at MAX_PARSE_BYTES or _MAX_PARTS parts
    (a crafted mail of millions of tiny parts would otherwise cost seconds and gigabytes)."""
    parts = 0

    def new_part(policy: Policy = compat32) -> Message:
        nonlocal parts
        parts += 1
        return Message(policy)

    parser = BytesFeedParser(_factory=new_part, policy=compat32)
    parts = 0  # the parser made one to check the factory
    defects: list[str] = []
    for start in range(0, len(raw), _FEED_CHUNK):
        if start >= MAX_PARSE_BYTES:
            defects.append("TruncatedForParsing")
            break
        if parts > _MAX_PARTS:
            defects.append("TooManyParts")
            break
        parser.feed(raw[start : start + _FEED_CHUNK].replace(b"\x00", b""))
    msg = parser.close()
    assert isinstance(msg, Message)
    return msg, defects


def _parse(raw: bytes, max_text_chars: int) -> ParsedMail:
    msg, parse_defects = _message(raw)
    # raw_items: the values as received (items() would turn 8-bit bytes into U+FFFD).
    received = [
        (_unescape_8bit(str(name)).strip()[:200], _unescape_8bit(str(value)[:_MAX_RAW_HEADER]))
        for name, value in list(msg.raw_items())[:_MAX_HEADERS]
    ]
    headers = tuple((name, _one_line(_decode_words(value))) for name, value in received)

    def values(name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in headers if key.lower() == wanted]

    def first(name: str) -> str | None:
        found = values(name)
        return found[0] if found else None

    def undecoded(name: str) -> list[str]:
        # Addresses and message ids are read before any encoded word is decoded (RFC 2047
        # §5): a name that decodes to "x: y" or "<a@b>" never changes the structure.
        wanted = name.lower()
        return [_one_line(value) for key, value in received if key.lower() == wanted]

    from_values = undecoded("From")
    from_value = from_values[0] if from_values else ""
    from_name, from_raw = parseaddr(from_value)
    text, types, part_defects = _body(msg, max_text_chars)
    text = _clean_text(text, max_text_chars)
    defects = [type(d).__name__ for d in msg.defects] + part_defects + parse_defects
    if not raw.strip():
        defects.append("EmptyMessage")
    if not from_value:
        defects.append("MissingFrom")
    return ParsedMail(
        message_id=_single_message_id(next(iter(undecoded("Message-ID")), None)),
        from_addr=normalize_address(from_raw),
        from_name=_one_line(_decode_words(from_name)),
        to_addrs=_addresses(undecoded("To")),
        cc_addrs=_addresses(undecoded("Cc")),
        subject=first("Subject") or "",
        date=_date(first("Date")),
        in_reply_to=_message_ids(next(iter(undecoded("In-Reply-To")), None)),
        references=_message_ids(" ".join(undecoded("References"))),
        headers=headers,
        text=text,
        reply_text=extract_reply(text)[:max_text_chars],
        raw_size=len(raw),
        defects=tuple(dict.fromkeys(defects)),
        content_types=types,
    )


def parse_mail(raw: bytes, *, max_text_chars: int = 100_000) -> ParsedMail:
    """Parse one raw email (I7: malformed mail never stops the reader). Never raises."""
    try:
        return _parse(raw, max_text_chars)
    except Exception as exc:  # the last line of defence: an unparseable mail is still logged
        return ParsedMail(
            message_id=None,
            from_addr=None,
            from_name="",
            to_addrs=(),
            cc_addrs=(),
            subject="",
            date=None,
            in_reply_to=(),
            references=(),
            headers=(),
            text="",
            reply_text="",
            raw_size=len(raw),
            defects=(f"Unparseable: {type(exc).__name__}",),
        )
