"""E11: text from people never becomes a header.

Only a line break (or another control) can end a header, so that is what is kept out, twice:
on input (CLI, API) `check_header_text` refuses names and titles that hold one, and just
before a header is built `clean_header_text` turns whatever got through (older rows, mail)
into spaces. Text that merely looks like an encoded word ("=?…?=") is the person's text and
is kept as written: the composer (`services/domain/mime.py`) encodes every value holding
"=?" as encoded words, so a mail client shows exactly that text and never decodes it into
something else. (CVE-2024-6923: Python 3.11.7's own header folding turned such text into real
headers; our headers are never folded by the interpreter's generator.)
"""

from __future__ import annotations

import re
import unicodedata
from email.headerregistry import Address

from services.errors import InputError, quoted

__all__ = [
    "ELLIPSIS",
    "MAX_ADDRESS_LEN",
    "HeaderInjectionError",
    "InvalidAddressError",
    "check_header_text",
    "clean_header_text",
    "format_address",
    "normalize_address",
    "normalize_domain",
]

ELLIPSIS = "…"
MAX_ADDRESS_LEN = 254
_MAX_LOCAL_LEN = 64

# Unicode categories that must never reach a header: controls (C0, DEL, C1: CR, LF, VT, FF,
# the \x1c-\x1e separators, NEL), line and paragraph separators, lone surrogates.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
_ENCODED_WORD_START = "=?"

_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL_RE = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*", re.IGNORECASE)
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class HeaderInjectionError(InputError):
    """Text meant for an email header holds a line break, a control or an encoded word."""


class InvalidAddressError(InputError):
    """Not one plain email address (addr-spec)."""


def _is_forbidden(ch: str) -> bool:
    return unicodedata.category(ch) in _FORBIDDEN_CATEGORIES


def check_header_text(text: str, *, field: str) -> str:
    """Refuse person-supplied header text that could break out of its header; return it."""
    for ch in text:
        if _is_forbidden(ch):
            kind = (
                "a line break"
                if ch in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"
                else ("a control character")
            )
            raise HeaderInjectionError(
                f"{field} must not contain {kind} (U+{ord(ch):04X}); use a single line of text"
            )
    return text


def clean_header_text(text: str, *, max_len: int = 200) -> str:
    """Make any text safe for a header: never raises, idempotent.

    Controls and line breaks become spaces, whitespace is collapsed, and the result is cut
    to `max_len` characters ending in "…". Everything else is kept as written.
    """
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    cleaned = " ".join("".join(" " if _is_forbidden(ch) else ch for ch in text).split())
    if len(cleaned) > max_len:
        cleaned = cleaned[: max_len - 1].rstrip() + ELLIPSIS
    return cleaned


def normalize_domain(domain: str) -> str:
    """A domain in lowercase ASCII (IDNA for international names), or InvalidAddressError."""
    original = domain
    domain = domain.lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidAddressError(f"{quoted(original)} is not a valid mail domain") from exc
    labels = domain.split(".")
    if (len(labels) < 2 and domain != "localhost") or not all(
        _LABEL_RE.fullmatch(label) for label in labels
    ):
        raise InvalidAddressError(f"{quoted(original)} is not a valid mail domain")
    return domain


def normalize_address(addr: str) -> str:
    """One plain addr-spec, lowercased; anything else raises InvalidAddressError.

    No display name, no comments, no quoted local part, no spaces or line breaks; an ASCII
    local part; an international domain is converted to its ASCII (IDNA) form.
    """
    bad = InvalidAddressError(f"{quoted(addr)} is not a valid email address")
    candidate = addr.strip(" ")
    if not candidate or len(candidate) > MAX_ADDRESS_LEN or candidate.count("@") != 1:
        raise bad
    local, _, domain = candidate.partition("@")
    if (
        len(local) > _MAX_LOCAL_LEN
        or not local.isascii()
        or not _LOCAL_RE.fullmatch(local)
        or _ENCODED_WORD_START in local
    ):
        raise bad
    try:
        ascii_domain = normalize_domain(domain)
    except InvalidAddressError as exc:
        raise bad from exc
    result = f"{local.lower()}@{ascii_domain}"
    if len(result) > MAX_ADDRESS_LEN:
        raise bad
    return result


def format_address(*, name: str, address: str) -> str:
    """`"Name" <addr>` for a header, the name cleaned (E11) and the address checked."""
    addr_spec = normalize_address(address)
    display = clean_header_text(name, max_len=100)
    return str(Address(display_name=display, addr_spec=addr_spec))
