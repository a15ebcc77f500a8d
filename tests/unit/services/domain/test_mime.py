"""The one MIME composer (E4, E11): what goes in comes out, and nothing else does."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.domain.headers import HeaderInjectionError, clean_header_text, format_address
from services.domain.mime import compose
from services.incoming.parse import parse_mail

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_e4_text_and_html_alternatives_round_trip() -> None:
    raw = compose(
        headers=[("From", "Deskbell <support@example.com>"), ("Subject", "[#1] Printer")],
        date=T0,
        text="Grüße,\nline two with = and trailing space \n",
        html="<p>Grüße</p>",
    )
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    # Line breaks are CRLF on the wire (RFC 2045); a reader turns them into its own.
    assert plain.get_content().replace("\r\n", "\n") == (
        "Grüße,\nline two with = and trailing space \n"
    )
    assert html.get_content() == "<p>Grüße</p>"
    assert msg["Date"] == "Mon, 05 Jan 2026 09:00:00 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_e4_plain_only_has_no_multipart() -> None:
    msg = parse(compose(headers=[("To", "bob@example.com")], date=T0, text="hi"))
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == "hi"


def test_e11_non_ascii_names_and_subjects_are_encoded_not_raw() -> None:
    raw = compose(
        headers=[
            ("From", format_address(name="Zoë Ångström", address="zoe@example.com")),
            ("Subject", " ".join(["Café printer — ünïcode"] * 8)),
        ],
        date=T0,
        text="x",
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    msg = parse(raw)
    assert str(msg["From"]) == "Zoë Ångström <zoe@example.com>"
    assert str(msg["Subject"]) == " ".join(["Café printer — ünïcode"] * 8)


@pytest.mark.parametrize(
    "evil",
    ["Hi\r\nBcc: victim@example.com", "Hi\u2028Bcc: victim@example.com", "Hi\x00there"],
)
def test_e11_line_breaks_are_refused(evil: str) -> None:
    with pytest.raises(HeaderInjectionError):
        compose(headers=[("Subject", evil)], date=T0, text="x")


LITERAL_ENCODED_WORDS = [
    "=?UTF-8?Q?=0A?=Bcc: victim@example.com",
    "=?UTF-8?Q?=0D=0A?=Bcc: victim@example.com",
    "=?utf-8?b?CkJjYzogeA==?=",
    "Error =?utf-8?B?SGk=?= in the log",
    "half =? an encoded word ?= and more",
    "=?",
    "Grüße =?iso-8859-1?q?caf=E9?=" + " long" * 30,
]


@pytest.mark.parametrize("text", LITERAL_ENCODED_WORDS)
def test_e11_literal_encoded_words_read_back_exactly_and_add_no_header(text: str) -> None:
    """Issue 8: "=?" in a subject or a name is encoded when the header is built, so a mail
    client shows exactly that text and never decodes it into something else (a Bcc)."""
    raw = compose(
        headers=[
            ("From", format_address(name=text, address="support@example.com")),
            ("To", format_address(name=text, address="carl@example.com")),
            ("Subject", f"[#7] {text}"),
        ],
        date=T0,
        text="x",
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    msg = parse(raw)
    assert set(msg.keys()) == {
        "From", "To", "Subject", "Date", "MIME-Version", "Content-Type",
        "Content-Transfer-Encoding",
    }  # fmt: skip
    name = clean_header_text(text, max_len=100)  # format_address keeps 100 characters
    assert str(msg["Subject"]) == f"[#7] {text}"
    assert msg["From"].addresses[0].display_name == name
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["To"].addresses[0].display_name == name
    # Our own reader decodes it once, too: a reply's subject keeps the text.
    mail = parse_mail(raw)
    assert mail.subject == f"[#7] {text}"
    assert mail.from_name == name
    assert mail.from_addr == "support@example.com"
    assert mail.to_addrs == ("carl@example.com",)
    assert mail.header("Bcc") is None


def test_e11_bad_header_names_and_addresses_are_refused() -> None:
    with pytest.raises(HeaderInjectionError):
        compose(headers=[("Bcc: x\r\nSubject", "hi")], date=T0, text="x")
    with pytest.raises(HeaderInjectionError):
        compose(headers=[("To", "not an address")], date=T0, text="x")


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(max_size=80), subject=st.text(max_size=300), body=st.text(max_size=2000))
def test_e11_property_any_cleaned_text_gives_exactly_our_headers(
    name: str, subject: str, body: str
) -> None:
    raw = compose(
        headers=[
            ("From", format_address(name=name, address="support@example.com")),
            ("Subject", clean_header_text(subject)),
        ],
        date=T0,
        text=body,
    )
    msg = parse(raw)
    assert set(msg.keys()) == {
        "From", "Subject", "Date", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"
    }  # fmt: skip
    assert "support@example.com" in str(msg["From"])
    assert msg.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")
