"""E11: the outbox's address check, with its fast path for plain addresses, says exactly what
the full check (unicode categories, then aiosmtplib's own parser) says."""

from __future__ import annotations

import unicodedata

from aiosmtplib.email import parse_address
from hypothesis import given, settings
from hypothesis import strategies as st

from services.mail.smtp import _address_problem


def _reference(address: str) -> str | None:
    """The check as written before the fast path (one character and one parse at a time)."""
    if not address.strip():
        return "is empty"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in address):
        return "contains a line break or control character"
    if any(c in "<>" or c.isspace() for c in address):
        return "contains a space, < or >"
    if "@" not in address:
        return "has no @"
    try:
        if parse_address(address) != address:
            return "is not a bare address"
    except ValueError:
        return "cannot be sent on an SMTP command line"
    return None


_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        ".",
        "..",
        "@",
        "+",
        "-",
        "_",
        "'",
        '"',
        "(",
        ")",
        ",",
        ";",
        ":",
        "\\",
        "[",
        "]",
        " ",
        "\t",
        "\r\n",
        "\x85",
        "\u2028",
        "é",
        "ß",
        "<",
        ">",
        "=",
        "!",
        "#",
        "~",
    ]
)


@settings(max_examples=3000)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_e11_fast_address_check_matches_the_full_check(address: str) -> None:
    assert _address_problem(address) == _reference(address)


@given(st.text(max_size=30))
def test_e11_fast_address_check_matches_on_any_text(address: str) -> None:
    assert _address_problem(address) == _reference(address)


def test_e11_typical_addresses() -> None:
    for address in ("a@b.c", "bounce+12-abc@deskbell.example.com", "first.last@x-y.org"):
        assert _address_problem(address) is None
    assert _address_problem("a..b@c") == _reference("a..b@c")
    assert _address_problem(".a@c") == _reference(".a@c")
