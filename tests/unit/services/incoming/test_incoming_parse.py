"""parse_mail (I4, I7): every corpus mail parses, replies are cut to their new text."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.incoming.html_text import html_to_text
from services.incoming.parse import parse_mail
from services.incoming.reply import extract_reply

CORPUS = Path(__file__).resolve().parents[4] / "tests" / "corpus"
ALL_MAILS = sorted(CORPUS.glob("*.eml"))

# The new text of each reply shape, exactly.
EXPECTED_REPLY = {
    "reply_gmail.eml": "Thanks, that fixed it! The printer works again.",
    "reply_outlook.eml": "Hi,\n\nit still doesn't work. I tried it twice – no luck.",
    "reply_outlook_original.eml": "The printer shows error E-45 now.",
    "reply_apple.eml": "Done – it’s printing now.",
    "forward_apple.eml": "Can you look at this one too?",
    "reply_bottom_posted.eml": "It is an HP LaserJet 4250.\n\nRoom 3.12, next to the kitchen.",
    "reply_html_only.eml": 'Yes, "Room 3.12" & the kitchen one.\n\nThank you!',
    "reply_signature.eml": "The new toner arrived, please install it.",
    "reply_iphone.eml": "Ok, I will be in room 3.12 at 2pm.",
    "normal_new.eml": "Hello,\n\nsince this morning the VPN does not connect.\nError: 809.",
}


def test_i7_corpus_is_there() -> None:
    assert len(ALL_MAILS) >= 25
    assert set(EXPECTED_REPLY) <= {p.name for p in ALL_MAILS}


@pytest.mark.parametrize("path", ALL_MAILS, ids=lambda p: p.name)
def test_i7_every_corpus_mail_parses(path: Path) -> None:
    raw = path.read_bytes()
    mail = parse_mail(raw)
    assert mail.raw_size == len(raw)
    assert "\x00" not in mail.text + mail.subject + mail.reply_text
    for name, value in mail.headers:
        assert "\n" not in value
        assert "\r" not in value
        assert "\n" not in name


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_REPLY.items()))
def test_i4_reply_text_is_the_new_text_only(name: str, expected: str) -> None:
    mail = parse_mail((CORPUS / name).read_bytes())
    assert mail.reply_text == expected


def test_i4_full_text_keeps_the_history() -> None:
    mail = parse_mail((CORPUS / "reply_gmail.eml").read_bytes())
    assert "please switch the printer off and on again" in mail.text
    assert "please switch" not in mail.reply_text


def test_i4_headers_are_decoded() -> None:
    mail = parse_mail((CORPUS / "reply_gmail.eml").read_bytes())
    assert mail.from_addr == "anna.kunde@example.com"
    assert mail.from_name == "Anna Kunde"
    assert mail.to_addrs == ("support@deskbell.test",)
    assert mail.message_id == "gmail1@mail.example.com"
    assert mail.in_reply_to == ("db.42.7f3a@deskbell.test",)
    assert mail.references == ("db.42.1@deskbell.test", "db.42.7f3a@deskbell.test")
    assert mail.date == datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
    assert mail.subject == "Re: [#42] Printer on floor 3 is offline"


def test_i4_encoded_words_and_folded_subject() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.COM>\r\n"
        b'To: a@b.co, "X, Y" <C@D.org>, not-an-address\r\n'
        b"Cc: =?utf-8?b?w6l0w6k=?= <e@f.net>\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= und\r\n\tmehr caf\xc3\xa9\r\n\r\nx\r\n"
    )
    mail = parse_mail(raw)
    assert mail.from_name == "Jürgen Müller"
    assert mail.from_addr == "juergen@example.com"
    assert mail.to_addrs == ("a@b.co", "c@d.org")
    assert mail.cc_addrs == ("e@f.net",)
    assert mail.subject == "Grüße und mehr café"


def test_i4_an_encoded_line_break_never_reaches_a_header_value() -> None:
    mail = parse_mail(b"From: a@b.co\r\nSubject: =?UTF-8?Q?hi=0ABcc:_x@evil.test?=\r\n\r\nx")
    assert mail.subject == "hi Bcc: x@evil.test"
    assert mail.header("Bcc") is None


def test_i7_unknown_charset_is_decoded_with_replacement() -> None:
    mail = parse_mail((CORPUS / "malformed_charset.eml").read_bytes())
    assert mail.text == "Grüße aus äöü."
    assert mail.from_addr == "dana@example.com"


def test_i7_nul_bytes_are_stripped() -> None:
    mail = parse_mail((CORPUS / "malformed_nul.eml").read_bytes())
    assert mail.subject == "nulbytes"
    assert mail.text == "beforeafter end"


def test_i7_broken_boundary_keeps_the_body_and_reports_a_defect() -> None:
    mail = parse_mail((CORPUS / "malformed_boundary.eml").read_bytes())
    assert "The boundary never matches." in mail.text
    assert mail.defects


def test_i7_missing_from_and_empty_file() -> None:
    no_from = parse_mail((CORPUS / "malformed_no_from.eml").read_bytes())
    assert no_from.from_addr is None
    assert no_from.from_name == ""
    assert no_from.reply_text == "No sender at all."
    assert "MissingFrom" in no_from.defects
    empty = parse_mail(b"")
    assert empty.text == ""
    assert empty.subject == ""
    assert empty.message_id is None
    assert "EmptyMessage" in empty.defects


def test_i7_header_garbage_keeps_what_can_be_kept() -> None:
    mail = parse_mail((CORPUS / "malformed_header_garbage.eml").read_bytes())
    assert mail.from_addr == "dana@example.com"
    assert mail.subject == "garbage"
    assert mail.date is None


def test_i7_huge_attachment_is_skipped_and_text_kept() -> None:
    blob = base64.encodebytes(bytes(range(256)) * (5 * 1024 * 1024 // 256)).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@b.co\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attached log.\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=log.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"--XX--\r\n"
    )
    assert len(raw) > 5_000_000
    mail = parse_mail(raw)
    assert mail.text == "See the attached log."
    assert mail.content_types == ("multipart/mixed", "text/plain", "application/octet-stream")


def test_i7_huge_text_is_capped() -> None:
    raw = b"From: a@b.co\r\nSubject: long\r\n\r\n" + b"word " * 100_000
    mail = parse_mail(raw, max_text_chars=1_000)
    assert len(mail.text) == 1_000
    assert len(mail.reply_text) <= 1_000


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\x02\xff" * 50,
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
        b"Content-Type: text/plain; charset*=utf-8''%ZZ\r\n\r\nx",
        b"Content-Type: text/plain; charset=hex\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"From: \r\nTo: \r\nDate: Mon, 99 Foo 99999 99:99:99\r\n\r\n",
        b"Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n" * 300,
        b":\r\n:::\r\n\r\n",
    ],
)
def test_i7_garbage_never_raises(raw: bytes) -> None:
    mail = parse_mail(raw)
    assert mail.raw_size == len(raw)


def test_i4_html_to_text_blocks_entities_and_quotes() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>One&nbsp;&amp;&#32;two</p><div>three<br>four</div>"
        "<script>var x = 1;</script><blockquote><p>old</p></blockquote>"
        "<pre>a  b\nc</pre></body></html>"
    )
    assert html_to_text(html) == "One & two\n\nthree\nfour\n\n> old\n\na  b\nc"


def test_i4_reply_fallbacks() -> None:
    assert extract_reply("New.\n\n-----Original Message-----\nold") == "New."
    assert extract_reply("New.\n\nOn Mon, 5 Jan 2026, Desk\n<d@x.test> wrote:\n> old") == "New."
    assert extract_reply("> only\n> quoted") == ""
    assert extract_reply("- first\n- second") == "- first\n- second"
