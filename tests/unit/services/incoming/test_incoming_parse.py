"""parse_mail (I4, I7): every corpus mail parses, replies are cut to their new text."""

from __future__ import annotations

import base64
import quopri
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.incoming.html_text import html_to_text
from services.incoming.parse import MAX_PARSE_BYTES, ParsedMail, parse_mail
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
    # Bottom-posted and inline replies: the new text below and between the quotes survives.
    "reply_mutt_inline.eml": (
        "An HP LaserJet 4250.\n\nRoom 3.12, next to the kitchen.\n  The one with the blue sticker."
    ),
    "reply_thunderbird_bottom.eml": "Yes, still offline. The display says „Wartung“.\n\nClara",
    "reply_evolution_bottom.eml": (
        "No, the pages still come out pale.\nI attached nothing, the printer is right here."
    ),
    "reply_k9_german.eml": (
        "Ich bin ab 14 Uhr im Büro, dann können Sie vorbeikommen.\nDer Schlüssel liegt am Empfang."
    ),
    "reply_inline_outlook_web.eml": (
        "Hallo,\n\nmeine Antworten stehen unten.\n\n"
        "Ein HP LaserJet 4250.\n\nDer dritte Stock.\n\nNein."
    ),
    "reply_quote_only.eml": "",
}


def test_i7_corpus_is_there() -> None:
    assert len(ALL_MAILS) >= 31
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


# --- E6-class hostile input (issue 8, item 6): whatever arrives, the text can be stored ----


def _assert_storable(mail: ParsedMail) -> None:
    """Every str that may reach the database encodes as UTF-8 and holds no NUL."""
    texts = [
        mail.subject,
        mail.text,
        mail.reply_text,
        mail.from_name,
        mail.from_addr or "",
        mail.message_id or "",
        *mail.to_addrs,
        *mail.cc_addrs,
        *mail.in_reply_to,
        *mail.references,
        *mail.defects,
        *mail.content_types,
        *(part for pair in mail.headers for part in pair),
    ]
    for text in texts:
        text.encode("utf-8")  # raises on a lone surrogate
        assert "\x00" not in text


HOSTILE_HEADERS = [
    b"Subject: =?utf-8?q?x?= C:\\ud800\\x00 path",
    b"Subject: =?unicode-escape?q?\\ud800?=",
    b"Subject: =?utf-7?q?+2AA-?=",
    b"Subject: =?utf-16?b?ANg=?=",
    b"Subject: =?x-no-such-charset?q?abc?=",
    b"Subject: =?utf-8?b?!!not base64!!?=",
    b"Subject: =?utf-8?q?nul=00here?=",
    b"Subject: \xed\xa0\x80 encoded surrogate",
    b"From: =?utf-7?q?+2AA-?= <=?utf-7?q?+2AA-?=@example.com>",
    b"From: x\\ud800@example.com",
    b"Message-ID: <=?utf-7?q?+2AA-?=@x>",
    b"X-\xff\xfe-Name: value",
    b"To: =?unicode-escape?q?\\udcff?= <a@b.co>",
]


@pytest.mark.parametrize("header", HOSTILE_HEADERS)
def test_i7_hostile_headers_give_storable_text(header: bytes) -> None:
    raw = b"From: a@b.co\r\n" + header + b"\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
    mail = parse_mail(raw)
    _assert_storable(mail)
    assert mail.text.endswith("body")  # an 8-bit header name ends the header (compat32)


HOSTILE_BODY = b"+2AA- \\ud800 \\x00 \\N{NULL} \xff\xfe\x00\xd8 \xed\xa0\x80 =?x?= end"


@pytest.mark.parametrize(
    "charset",
    [
        "utf-7",
        "unicode-escape",
        "raw-unicode-escape",
        "unicode_internal",
        "utf-16",
        "utf-32",
        "punycode",
        "idna",
        "rot13",
        "hex",
        "undefined",
        "x-no-such-charset",
        "utf-8",  # mislabelled: the bytes are not UTF-8
        "us-ascii",
        "",
    ],
)
@pytest.mark.parametrize("encoding", ["8bit", "base64", "quoted-printable"])
def test_i7_hostile_charsets_give_storable_text(charset: str, encoding: str) -> None:
    body = HOSTILE_BODY
    if encoding == "base64":
        body = base64.encodebytes(body)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(body)
    for ctype in ("text/plain", "text/html"):
        raw = (
            f"From: a@b.co\r\nSubject: s\r\nContent-Type: {ctype}; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
        ).encode() + body
        mail = parse_mail(raw)
        _assert_storable(mail)
        if not charset.startswith("utf-") or charset in ("utf-7", "utf-8"):
            assert mail.text.endswith("end")  # mislabelled as UTF-16/32 it is only garbage


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.binary(max_size=200),
    body=st.binary(max_size=400),
    charset=st.sampled_from(["utf-7", "unicode-escape", "utf-16", "latin-1", "utf-8", "nope"]),
)
def test_i7_property_any_bytes_give_storable_text(header: bytes, body: bytes, charset: str) -> None:
    raw = (
        b"From: a@b.co\r\nSubject: =?"
        + charset.encode()
        + b"?q?"
        + header.replace(b"\r", b"").replace(b"\n", b"")
        + b"?= "
        + header
        + b"\r\nContent-Type: text/plain; charset="
        + charset.encode()
        + b"\r\n\r\n"
        + body
    )
    _assert_storable(parse_mail(raw))


def test_i7_backslashes_next_to_an_encoded_word_are_kept_as_sent() -> None:
    mail = parse_mail(b"From: a@b.co\r\nSubject: =?utf-8?q?Pfad?= C:\\users\\u0041\\n\r\n\r\nx")
    assert mail.subject == "Pfad C:\\users\\u0041\\n"


def test_e11_a_literal_encoded_word_in_a_subject_is_kept_as_text() -> None:
    """The customer's client encoded the literal text "=?utf-8?B?…?=": we decode it once."""
    subject = b"=?UTF-8?Q?Error_=3D=3Futf-8=3FB=3FSGk=3D=3F=3D_in_log?="
    raw = b"From: a@b.co\r\nSubject: " + subject + b"\r\n\r\nx"
    assert parse_mail(raw).subject == "Error =?utf-8?B?SGk=?= in log"


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


_N = 50_000
HOSTILE_SHAPES = {
    "one long On … wrote line": "On " + "a " * _N + "wrote",
    "On … wrote without a colon": "On " + "a wrote " * (_N // 4),
    "On On On": "On " * _N + "wrote:",
    "tabs": "On" + " \t" * _N + "wrote",
    "Am … schrieb": "Am " + "a " * _N + "schrieb",
    "Il … ha scritto": "Il " + "a " * _N + "ha scritto",
    "Op … schreef": "Op " + "a " * _N + "schreef",
    "quoted On": "> On " + "a " * _N + "wrote",
    "many attributions": "x wrote:\n" * (_N // 5),
    "many header blocks": "From: a\nSent: b\n" * (_N // 8),
    "many closings": "Thanks,\n" * (_N // 4),
    "signature-like": "-a\n" * (_N // 2),
}


@pytest.mark.parametrize("shape", sorted(HOSTILE_SHAPES))
def test_i7_hostile_bodies_cost_linear_time(shape: str) -> None:
    """A crafted body costs about what any body of its size costs: no quadratic regex.

    Compared with a plain body of the same size and lines, measured in the same run (best of
    3), so a slow or busy machine slows both alike; before the fix the "On … wrote" shapes
    cost 1,000× and more.
    """
    body = HOSTILE_SHAPES[shape]
    plain = re.sub(r"[^\n]", "w", body)  # same size and lines, nothing to match

    def raw(text: str, ctype: str = "plain") -> bytes:
        head = f"From: a@b.co\r\nSubject: s\r\nContent-Type: text/{ctype}; charset=utf-8\r\n\r\n"
        return head.encode() + text.encode()

    baseline = _best_of(3, lambda: parse_mail(raw(plain)))
    crafted = _best_of(3, lambda: parse_mail(raw(body)))
    assert crafted < 30 * baseline + 0.05, (shape, crafted, baseline)


def test_i7_hostile_html_costs_linear_time() -> None:
    html = "<b>a</b>" * 50_000
    plain = "<p>" + "word " * (len(html) // 5) + "</p>"

    def raw(text: str) -> bytes:
        return b"From: a@b.co\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + text.encode()

    baseline = _best_of(3, lambda: parse_mail(raw(plain)))
    crafted = _best_of(3, lambda: parse_mail(raw(html)))
    assert crafted < 30 * baseline + 0.05, (crafted, baseline)


def test_i7_the_parser_stops_at_its_bounds_and_keeps_the_headers() -> None:
    """Millions of tiny parts cost seconds and a gigabyte in the stdlib parser; deep nesting
    blew its recursion limit and lost the whole mail. Both stop at the part limit now."""
    head = b"From: Dana <dana@example.com>\r\nSubject: crafted\r\n"
    many = (
        head
        + b"Content-Type: multipart/mixed; boundary=X\r\n\r\n"
        + b"--X\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        + b"--X\r\nContent-Type: application/x-junk\r\n\r\nx\r\n" * 1_000_000
    )
    deep = head + b"".join(
        b"Content-Type: multipart/mixed; boundary=B%d\r\n\r\n--B%d\r\n" % (n, n)
        for n in range(20_000)
    )
    for raw in (many, deep):
        mail = parse_mail(raw)
        assert mail.from_addr == "dana@example.com"
        assert mail.subject == "crafted"
        assert "TooManyParts" in mail.defects
        assert len(mail.content_types) <= 501
    assert parse_mail(many).text == "first"


def test_i7_only_the_start_of_a_huge_mail_is_parsed() -> None:
    text = b"Hello, the log follows.\r\n" + b"log line\r\n" * 1_000_000
    mail = parse_mail(b"From: a@b.co\r\nSubject: log\r\n\r\n" + text)
    assert "TruncatedForParsing" in mail.defects
    assert mail.text.startswith("Hello, the log follows.\nlog line")
    assert mail.raw_size > MAX_PARSE_BYTES


def test_i7_an_overlong_address_is_no_address() -> None:
    """It would not fit the log's column on PostgreSQL (RFC 5321 allows 254 characters)."""
    mail = parse_mail(b"From: " + b"a" * 300 + b"@example.com\r\nTo: b@c.co\r\n\r\nx")
    assert mail.from_addr is None
    assert mail.to_addrs == ("b@c.co",)
