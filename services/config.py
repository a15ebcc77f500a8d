"""Workspace settings: the known keys, their parsing and their defaults (`deskbell config`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.domain.headers import check_header_text, normalize_address
from services.errors import InputError

__all__ = ["KEYS", "ConfigKey", "parse_value"]


def _text(value: str) -> str:
    return check_header_text(value.strip(), field="value")


def _port(value: str) -> str:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise InputError(f"{value!r} is not a port number (1-65535)")
    return str(int(value))


def _seconds(value: str) -> str:
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"{value!r} is not a whole number of seconds (at least 1)")
    return str(int(value))


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise InputError(f"{value!r} is not one of: {', '.join(choices)}")
        return value

    return parse


def _address(value: str) -> str:
    return normalize_address(value)


def _boolean(value: str) -> str:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return "true"
    if lowered in ("0", "false", "no", "off"):
        return "false"
    raise InputError(f"{value!r} is not true or false")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str
    default: str
    parse: Callable[[str], str]
    help: str


KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        ConfigKey("smtp.host", "", _text, "SMTP server host name"),
        ConfigKey("smtp.port", "587", _port, "SMTP port (587 STARTTLS, 465 TLS, 25 relay)"),
        ConfigKey("smtp.security", "starttls", _choice("starttls", "tls", "none"), "TLS mode"),
        ConfigKey("smtp.username", "", _text, "SMTP login (empty: no login)"),
        ConfigKey("smtp.from", "deskbell@localhost", _address, "the From address of emails"),
        ConfigKey("smtp.from_name", "Deskbell", _text, "the From name of emails"),
        ConfigKey("smtp.cafile", "", _text, "extra CA certificates to trust (PEM file)"),
        ConfigKey(
            "unseen_delay_s", "60", _seconds, "default delay before an unseen message is emailed"
        ),
        ConfigKey(
            "outbox.lease_s", "120", _seconds, "how long a process may hold an email it sends"
        ),
        ConfigKey("imap.host", "", _text, "IMAP server host name (empty: no mailbox)"),
        ConfigKey("imap.port", "993", _port, "IMAP port"),
        ConfigKey("imap.security", "tls", _choice("tls", "starttls", "none"), "IMAP TLS mode"),
        ConfigKey("imap.username", "", _text, "IMAP login"),
        ConfigKey("imap.folder", "INBOX", _text, "the folder to read"),
        ConfigKey(
            "mail.create_items", "true", _boolean, "mail from strangers opens new items (I5)"
        ),
    )
}


def parse_value(key: str, value: str) -> str:
    """The stored form of `value` for `key`, or an InputError that says what is wrong."""
    spec = KEYS.get(key)
    if spec is None:
        raise InputError(f"unknown setting {key!r}; known: {', '.join(sorted(KEYS))}")
    return spec.parse(value)
