"""E11: people's text never becomes a header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.headers import (
    ELLIPSIS,
    HeaderInjectionError,
    InvalidAddressError,
    check_header_text,
    clean_header_text,
    format_address,
    normalize_address,
)
from services.errors import InputError

ATTACKS = [
    "Printer\r\nBcc: victim@example.com",
    "Printer\nBcc: victim@example.com",
    "Printer\rBcc: victim@example.com",
    "Line\u2028Bcc: x",
    "Para\u2029Bcc: x",
    "Next\x85Bcc: x",
    "Tab\vVT\fFF",
    "Sep\x1c\x1d\x1e",
    "Nul\x00byte",
    "Del\x7fchar",
]
BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00"


# Text that only looks like an encoded word is the person's text: it is kept as written, and
# the composer encodes it so that it reads back exactly (tests/unit/services/domain/test_mime.py).
ENCODED_LOOKING = [
    "=?UTF-8?Q?=0A?=Bcc: victim@example.com",
    "=?utf-8?b?CkJjYzogeA==?=",
    "half =? an encoded word",
    "Error =?utf-8?B?SGk=?= in the log",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_e11_check_refuses_breaks_and_controls(text: str) -> None:
    with pytest.raises(HeaderInjectionError, match="title"):
        check_header_text(text, field="title")


@pytest.mark.parametrize("text", ATTACKS)
def test_e11_clean_neutralises(text: str) -> None:
    cleaned = clean_header_text(text)
    assert not any(ch in cleaned for ch in BREAKS)
    check_header_text(cleaned, field="title")  # what clean returns always passes the check


@pytest.mark.parametrize("text", ENCODED_LOOKING)
def test_e11_encoded_word_lookalikes_are_kept_as_written(text: str) -> None:
    """Issue 8: a literal "=?" is the customer's text, not refused and not rewritten."""
    assert check_header_text(text, field="title") == text
    assert clean_header_text(text) == text


def test_e11_check_accepts_ordinary_text() -> None:
    for text in ("Printer on fire", "Zoë Ñúñez", "Is 2+2=4?", "日本語の件名", "a?=b"):
        assert check_header_text(text, field="title") == text


def test_e11_header_errors_are_input_errors() -> None:
    assert issubclass(HeaderInjectionError, InputError)
    assert issubclass(InvalidAddressError, InputError)
    assert issubclass(HeaderInjectionError, ValueError)


def test_e11_clean_collapses_whitespace_and_truncates() -> None:
    assert clean_header_text("  a \t\r\n  b  ") == "a b"
    long = clean_header_text("word " * 100, max_len=20)
    assert len(long) <= 20
    assert long.endswith(ELLIPSIS)


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_e11_property_clean_is_safe_bounded_and_idempotent(text: str, max_len: int) -> None:
    cleaned = clean_header_text(text, max_len=max_len)
    assert len(cleaned) <= max_len
    assert cleaned == cleaned.strip()
    check_header_text(cleaned, field="x")
    assert clean_header_text(cleaned, max_len=max_len) == cleaned


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  a.b+tag@sub.example.org ", "a.b+tag@sub.example.org"),
        ("root@localhost", "root@localhost"),
        ("zoe@exämple.com", "zoe@xn--exmple-cua.com"),
    ],
)
def test_e11_normalize_address(raw: str, normal: str) -> None:
    assert normalize_address(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ann",
        "ann@example",
        "ann@@example.com",
        "a@b@example.com",
        "Ann <ann@example.com>",
        '"ann"@example.com',
        "ann smith@example.com",
        "ann@example.com\r\nBcc: x@y.com",
        "ann@example.com\n",
        "zoë@example.com",
        "=?utf-8?q?x?=@example.com",
        "ann@-example.com",
        "ann@example..com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "ann@example.com,bob@example.com",
    ],
)
def test_e11_normalize_address_refuses(raw: str) -> None:
    with pytest.raises(InvalidAddressError, match="not a valid email address"):
        normalize_address(raw)


def test_e11_format_address_cleans_the_name() -> None:
    got = format_address(name="Eve\r\nBcc: x@y.com", address="Eve@Example.com")
    assert "\r" not in got
    assert "\n" not in got
    assert got.endswith("<eve@example.com>")
    assert format_address(name="", address="a@example.com") == "a@example.com"
    assert (
        format_address(name="Ann, Smith", address="a@example.com") == '"Ann, Smith" <a@example.com>'
    )
