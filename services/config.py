"""Workspace settings: the known keys, their parsing and their defaults (`deskbell config`).

Every key says what it accepts (`ConfigKey.accepts`, shown by `deskbell config set --help`),
and a value outside it is refused when it is set, in one line that says so: a value that
parsed but could never work (a host name with a space, a delay of 10^20 seconds) would
otherwise break every later post or stop all sending, far from where it was typed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.domain.headers import check_header_text, normalize_address
from services.errors import InputError, quoted

__all__ = ["KEYS", "MAX_LOGO_BYTES", "ConfigKey", "image_type", "parse_value", "usable_settings"]

_DIGITS: Final = re.compile(r"[0-9]{1,9}")  # ASCII only: "²" or "١" are not settings
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOST_CHARS: Final = 253
_MAX_PATH_CHARS: Final = 4096


def _whole(low: int, high: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = value.strip()
        if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
            raise ValueError
        return str(int(text))

    return parse


def _text(max_chars: int, *, required: bool = False) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = check_header_text(value.strip(), field="the value")
        if len(text) > max_chars or (required and not text):
            raise ValueError
        return text

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip().lower() not in choices:
            raise ValueError
        return value.strip().lower()

    return parse


def _host(value: str) -> str:
    """Empty (none), an IP address, or a host name (international names in IDNA form)."""
    text = value.strip().lower().strip("[]")
    if not text:
        return ""
    with contextlib.suppress(ValueError):  # not an address: a name, then
        return str(ipaddress.ip_address(text))
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError from exc
    labels = ascii_name.rstrip(".").split(".")
    if len(ascii_name) > _MAX_HOST_CHARS or not all(_LABEL.fullmatch(lab) for lab in labels):
        raise ValueError
    return ascii_name.rstrip(".")


def _file(value: str) -> str:
    """Empty (none), or a file that exists now (so a typo is caught here, not at send time)."""
    text = value.strip()
    if not text:
        return ""
    check_header_text(text, field="the path")
    if len(text) > _MAX_PATH_CHARS or not Path(text).expanduser().is_file():
        raise ValueError
    return str(Path(text).expanduser())


def _boolean(value: str) -> str:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return "true"
    if lowered in ("0", "false", "no", "off"):
        return "false"
    raise ValueError


_COLOUR: Final = re.compile(r"#[0-9a-f]{6}")
_URL: Final = re.compile(
    r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
)
_MAX_URL_CHARS: Final = 2000


def _colour(value: str) -> str:
    text = value.strip().lower()
    if not _COLOUR.fullmatch(text):
        raise ValueError
    return text


def _url(*, https_only: bool, root: bool) -> Callable[[str], str]:
    """Empty (none), or an absolute http(s) URL with no query or fragment; `root`: the
    server's own address, kept without a trailing slash so paths are appended to it."""

    def parse(value: str) -> str:
        text = value.strip()
        if not text:
            return ""
        match = _URL.fullmatch(text)
        if len(text) > _MAX_URL_CHARS or match is None:
            raise ValueError
        if https_only and match.group(1) != "https":
            raise ValueError
        return text.rstrip("/") if root else text

    return parse


MAX_LOGO_BYTES: Final = 48 * 1024  # the chat page stays light (under 100 KB in all)
# Raster images only, known by their first bytes: an SVG may carry script.
_IMAGE_MAGIC: Final = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def image_type(data: bytes) -> str | None:
    """The media type of a small PNG, JPEG, GIF or WebP image; None for anything else."""
    for media, magics in _IMAGE_MAGIC.items():
        if any(data.startswith(m) for m in magics):
            if media == "image/webp" and data[8:12] != b"WEBP":
                continue
            return media
    return None


def _logo(value: str) -> str:
    """Empty, an https:// image address, or an uploaded image as a `data:` URL (base64)."""
    text = value.strip()
    if not text.startswith("data:"):
        return _url(https_only=True, root=False)(text)
    media, _, encoded = text[5:].partition(";base64,")
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError from exc
    if len(data) > MAX_LOGO_BYTES or not data or image_type(data) != media:
        raise ValueError
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str
    default: str
    parse: Callable[[str], str]  # the stored form; ValueError (or InputError) if refused
    help: str
    accepts: str  # what `parse` accepts, in words


KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        ConfigKey(
            "smtp.host", "", _host, "SMTP server", "a host name or IP address (empty: no SMTP)"
        ),
        ConfigKey(
            "smtp.port",
            "587",
            _whole(1, 65535),
            "SMTP port (587 STARTTLS, 465 TLS, 25 relay)",
            "a port number from 1 to 65535",
        ),
        ConfigKey(
            "smtp.security",
            "starttls",
            _choice("starttls", "tls", "none"),
            "TLS mode",
            "starttls, tls or none",
        ),
        ConfigKey(
            "smtp.username",
            "",
            _text(254),
            "SMTP login (empty: no login)",
            "one line of up to 254 characters",
        ),
        ConfigKey(
            "smtp.from",
            "deskbell@localhost",
            normalize_address,
            "the From address of emails",
            "one email address, like support@example.com",
        ),
        ConfigKey(
            "smtp.from_name",
            "Deskbell",
            _text(100),
            "the From name of emails",
            "one line of up to 100 characters",
        ),
        ConfigKey(
            "smtp.cafile",
            "",
            _file,
            "extra CA certificates to trust (PEM file)",
            "the path of an existing file (empty: the system's certificates only)",
        ),
        ConfigKey(
            "unseen_delay_s",
            "60",
            _whole(1, 7 * 24 * 3600),
            "default delay before an unseen message is emailed",
            "whole seconds from 1 to 604800 (a week)",
        ),
        ConfigKey(
            "outbox.lease_s",
            "120",
            _whole(1, 3600),
            "how long a process may hold an email it sends",
            "whole seconds from 1 to 3600",
        ),
        ConfigKey(
            "imap.host",
            "",
            _host,
            "IMAP server (empty: no mailbox)",
            "a host name or IP address (empty: no mailbox)",
        ),
        ConfigKey(
            "imap.port", "993", _whole(1, 65535), "IMAP port", "a port number from 1 to 65535"
        ),
        ConfigKey(
            "imap.security",
            "tls",
            _choice("tls", "starttls", "none"),
            "IMAP TLS mode",
            "tls, starttls or none",
        ),
        ConfigKey(
            "imap.username", "", _text(254), "IMAP login", "one line of up to 254 characters"
        ),
        ConfigKey(
            "imap.folder",
            "INBOX",
            _text(200, required=True),
            "the folder to read",
            "a folder name of up to 200 characters",
        ),
        ConfigKey(
            "server.public_url",
            "",
            _url(https_only=False, root=True),
            "the team server's public address, for links in emails",
            "an http:// or https:// address like https://desk.example.com (empty: none)",
        ),
        ConfigKey(
            "chat.enabled",
            "true",
            _boolean,
            "customers may use the chat",
            "true or false (also yes/no, on/off, 1/0)",
        ),
        ConfigKey(
            "chat.title",
            "Messages",
            _text(80, required=True),
            "the chat page's title",
            "one line of 1 to 80 characters",
        ),
        ConfigKey(
            "chat.colour",
            "#1f5fbf",
            _colour,
            "the chat page's accent colour",
            "a colour like #1f5fbf",
        ),
        ConfigKey(
            "chat.logo_url",
            "",
            _logo,
            "the logo shown on the chat page",
            "an https:// image address, or a PNG, JPEG, GIF or WebP image of at most 48 KB "
            "uploaded as a data: URL (empty: no logo)",
        ),
        ConfigKey(
            "mail.create_items",
            "true",
            _boolean,
            "mail from strangers opens new items",
            "true or false (also yes/no, on/off, 1/0)",
        ),
    )
}


def parse_value(key: str, value: str) -> str:
    """The stored form of `value` for `key`, or an InputError that says what is wrong."""
    spec = KEYS.get(key)
    if spec is None:
        raise InputError(f"unknown setting {quoted(key)}; known: {', '.join(sorted(KEYS))}")
    try:
        return spec.parse(value)
    except InputError as exc:  # a line break in a name, an address that is not one
        raise InputError(f"{key}: {exc}") from None
    except ValueError:
        raise InputError(f"{key} must be {spec.accepts}, not {quoted(value)}") from None


def usable_settings(stored: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The stored settings that are still acceptable, and why each refused key is refused.

    A value stored before a key had its range, or written into the database by hand, falls
    back to the default instead of failing every post or every send.
    """
    usable: dict[str, str] = {}
    refused: dict[str, str] = {}
    for key, value in stored.items():
        if key not in KEYS:
            usable[key] = value  # not ours to judge (a newer version's key)
            continue
        try:
            usable[key] = parse_value(key, value)
        except InputError as exc:
            refused[key] = str(exc)
    return usable, refused
