"""The bytes of every email Deskbell sends: one small, strict MIME composer.

Our emails have one shape: a few headers, a plain-text body and optionally an HTML
alternative. Composing that shape directly is about three times faster than building an
`EmailMessage` and generating it (the scheduler renders one per unseen delivery), and it
leaves no room for a header we did not mean: every value is checked for line breaks first
(E11), then RFC 2047-encoded here if it is not ASCII or holds "=?", so that text which looks
like an encoded word reads back as exactly that text, never as what it would decode to.
"""

from __future__ import annotations

import quopri
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from email.charset import Charset
from email.header import Header
from email.utils import format_datetime, formataddr, getaddresses

from services.domain.headers import HeaderInjectionError, check_header_text

__all__ = ["ADDRESS_HEADERS", "compose"]

ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9-]{1,76}")
_MAX_LINE = 78
_ENCODED_WORD_START = "=?"
_UTF8 = Charset("utf-8")


def compose(
    *,
    headers: Sequence[tuple[str, str]],
    date: datetime,
    text: str,
    html: str | None = None,
) -> bytes:
    """A complete message: `headers` in order, then Date and MIME, then the body parts.

    Header values must already be the text people should see (names, subjects): they are
    refused if they hold a line break, and encoded here when needed.
    """
    if date.tzinfo is None:
        raise ValueError("the Date header needs a timezone-aware time")
    lines = [_header(name, value) for name, value in headers]
    lines.append(f"Date: {format_datetime(date)}")
    lines.append("MIME-Version: 1.0")
    if html is None:
        lines.extend(_part_headers("plain"))
        return _join(lines, _qp(text))
    boundary = f"=_deskbell_{uuid.uuid4().hex}"  # "=_" never occurs in quoted-printable
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    body = [
        f"--{boundary}",
        *_part_headers("plain"),
        "",
        _qp(text),
        f"--{boundary}",
        *_part_headers("html"),
        "",
        _qp(html),
        f"--{boundary}--",
        "",
    ]
    return _join(lines, "\r\n".join(body))


def _join(header_lines: list[str], body: str) -> bytes:
    return ("\r\n".join(header_lines) + "\r\n\r\n" + body).encode("ascii")


def _part_headers(subtype: str) -> list[str]:
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]


def _qp(text: str) -> str:
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return encoded.decode("ascii").replace("\n", "\r\n")


def _header(name: str, value: str) -> str:
    if not _HEADER_NAME_RE.fullmatch(name):
        raise HeaderInjectionError(f"{name!r} is not a valid header name")
    value = check_header_text(value, field=name)
    if name.lower() in ADDRESS_HEADERS:
        return f"{name}: {_addresses(value)}"
    literal = value.isascii() and _ENCODED_WORD_START not in value
    if literal and len(name) + 2 + len(value) <= _MAX_LINE:
        return f"{name}: {value}"
    charset = "us-ascii" if literal else "utf-8"
    folded = Header(value, charset, header_name=name).encode(maxlinelen=_MAX_LINE)
    return f"{name}: {folded}".replace("\n", "\r\n")


def _addresses(value: str) -> str:
    """One address header's value, display names encoded where they are not ASCII."""
    parts = []
    for name, address in getaddresses([value]):
        if not address or "@" not in address or not address.isascii():
            raise HeaderInjectionError(f"{value!r} does not hold a valid address")
        if _ENCODED_WORD_START in name:  # formataddr encodes only non-ASCII names
            parts.append(f"{_UTF8.header_encode(name)} <{address}>")
        else:
            parts.append(formataddr((name, address), charset="utf-8"))
    if not parts:
        raise HeaderInjectionError(f"{value!r} does not hold an address")
    return ", ".join(parts)
