"""E4, E11: what a notification email holds, and that people's text never makes a header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.domain.email_plan import (
    LOOP_TAG,
    MessageView,
    NotificationEmail,
    build_mime,
    plan_notification_email,
)
from services.domain.headers import HeaderInjectionError
from services.domain.model import ConversationKind, Person, PersonKind
from services.domain.tokens import find_token, make_token

KEY = b"key"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = make_token(key=KEY, conversation_id=12, recipient_id=7)
CUSTOMER = Person(
    id=7, email="Cat@Customer.example.com", name="Cat Customer", kind=PersonKind.CUSTOMER
)
AGENT = Person(id=8, email="bob@desk.example.com", name="Bob Agent", kind=PersonKind.USER)
BASE_HEADERS = {
    "From", "To", "Reply-To", "Subject", "Date", "Message-ID",
    "Auto-Submitted", "X-Auto-Response-Suppress", "X-Loop", "MIME-Version", "Content-Type",
}  # fmt: skip


def msg(i: int, minute: int, text: str = "hello", author: str = "Ann Agent") -> MessageView:
    return MessageView(
        id=i,
        author_name=author,
        author_email="ann@desk.example.com",
        created_at=T0 + timedelta(minutes=minute),
        text=text,
    )


def plan(**overrides: object) -> NotificationEmail:
    args: dict[str, object] = {
        "recipient": CUSTOMER,
        "conversation_kind": ConversationKind.EXTERNAL,
        "item_number": 42,
        "item_title": "Printer on fire",
        "new_messages": [msg(10, 10)],
        "earlier_messages": [],
        "token": TOKEN,
        "email_uid": "e99",
        "domain": "deskbell.example.com",
        "from_name": "Acme Support",
        "from_addr": "support@acme.example.com",
        "previous_message_ids": [],
    }
    args.update(overrides)
    return plan_notification_email(**args)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_e4_subject_item_and_stable() -> None:
    first = plan(new_messages=[msg(10, 10, "one")])
    later = plan(new_messages=[msg(11, 20, "two"), msg(12, 21, "three")])
    assert first.subject == "[#42] Printer on fire"
    assert later.subject == first.subject


def test_e4_subject_of_a_direct_conversation() -> None:
    got = plan(
        recipient=AGENT,
        conversation_kind=ConversationKind.DIRECT,
        item_number=None,
        item_title="",
        new_messages=[msg(10, 10, author="Ann Agent")],
    )
    assert got.subject == "Message from Ann Agent"


def test_e4_message_id_reply_address_and_auto_headers() -> None:
    got = plan()
    assert got.message_id == f"<{TOKEN}.e99@deskbell.example.com>"
    assert got.reply_to == f"Acme Support <support+{TOKEN}@acme.example.com>"
    assert got.from_addr == "Acme Support <support@acme.example.com>"
    assert got.to_addr == "Cat Customer <cat@customer.example.com>"
    assert dict(got.headers) == {
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "All",
        "X-Loop": LOOP_TAG,
    }
    assert "Precedence" not in dict(got.headers)
    assert find_token(got.reply_to, key=KEY) == (12, 7)
    assert find_token(got.message_id, key=KEY) == (12, 7)


def test_e4_threading_headers() -> None:
    previous = [f"<id{i}@deskbell.example.com>" for i in range(30)]
    got = plan(previous_message_ids=previous)
    assert got.in_reply_to == previous[-1]
    assert got.references == tuple(previous[-20:])
    assert plan().in_reply_to is None
    assert plan().references == ()


def test_e11_malformed_previous_ids_never_reach_headers() -> None:
    got = plan(previous_message_ids=["<a@b.example>", "<x\r\nBcc: v@x.com@b>", "no-brackets"])
    assert got.references == ("<a@b.example>",)


def test_e4_context_is_the_three_latest_earlier_messages() -> None:
    earlier = [msg(i, i) for i in range(1, 8)]
    got = plan(new_messages=[msg(9, 9), msg(8, 8)], earlier_messages=earlier)
    assert [m.id for m in got.new_messages] == [8, 9]
    assert [m.id for m in got.context_messages] == [5, 6, 7]


def test_e4_context_newer_than_new_messages_is_refused() -> None:
    with pytest.raises(ValueError, match="older"):
        plan(new_messages=[msg(5, 5)], earlier_messages=[msg(6, 6)])


def test_r2_customer_is_never_planned_an_internal_email() -> None:
    for kind in (ConversationKind.INTERNAL, ConversationKind.DIRECT):
        with pytest.raises(ValueError, match="may not receive"):
            plan(conversation_kind=kind)


def test_e3_no_new_messages_no_email() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plan(new_messages=[])


def test_e11_unsafe_token_uid_or_domain_refused() -> None:
    with pytest.raises(HeaderInjectionError):
        plan(token="c1r1-x\r\nBcc: x")
    with pytest.raises(HeaderInjectionError):
        plan(email_uid="e1>\r\nBcc: x")
    with pytest.raises(ValueError, match="domain"):
        plan(domain="deskbell.example.com>\r\nBcc: x")


def test_e4_build_mime_has_exactly_the_expected_headers() -> None:
    email = plan(previous_message_ids=["<a@deskbell.example.com>"])
    built = build_mime(email, text_body="Hello\n", html_body="<p>Hello</p>", date=T0)
    parsed = parse(built)
    assert set(parsed.keys()) == BASE_HEADERS | {"In-Reply-To", "References"}
    assert len(parsed.keys()) == len(set(parsed.keys()))
    assert parsed["Subject"] == "[#42] Printer on fire"
    assert parsed["Message-ID"] == email.message_id
    assert parsed["In-Reply-To"] == "<a@deskbell.example.com>"
    assert parsed["Date"] == "Mon, 05 Jan 2026 09:00:00 +0000"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = parsed.get_body(("plain",))
    assert text is not None
    assert text.get_content() == "Hello\r\n"  # policy.SMTP: CRLF line ends on the wire


def test_e4_build_mime_needs_an_aware_date() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_mime(plan(), text_body="x", html_body="x", date=datetime(2026, 1, 5))


INJECTIONS = [
    "Printer\r\nBcc: victim@example.com",
    "=?UTF-8?Q?=0A?=Bcc: victim@example.com",
    "=?UTF-8?Q?=0D=0A?=Bcc: victim@example.com",
    "Hi\u2028Bcc: victim@example.com",
    "Hi\u2029Bcc: victim@example.com",
    "Hi\x85Bcc: victim@example.com",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_e11_injection_in_names_and_title_never_adds_a_header(evil: str) -> None:
    email = plan(
        item_title=evil,
        recipient=Person(
            id=7, email="cat@customer.example.com", name=evil, kind=PersonKind.CUSTOMER
        ),
        from_name=evil,
    )
    parsed = parse(build_mime(email, text_body="x", html_body="<p>x</p>", date=T0))
    assert set(parsed.keys()) == BASE_HEADERS
    assert parsed["Bcc"] is None
    for name in ("Subject", "From", "To", "Reply-To"):
        assert "\n" not in str(parsed[name])
    assert str(parsed["To"]).endswith("<cat@customer.example.com>")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(max_size=80),
    name=st.text(max_size=40),
    author=st.text(max_size=40),
    kind=st.sampled_from([ConversationKind.EXTERNAL, ConversationKind.DIRECT]),
)
def test_e11_property_any_text_makes_exactly_the_expected_headers(
    title: str, name: str, author: str, kind: ConversationKind
) -> None:
    email = plan(
        recipient=Person(id=8, email="bob@desk.example.com", name=name, kind=PersonKind.USER),
        conversation_kind=kind,
        item_number=None if kind is ConversationKind.DIRECT else 7,
        item_title=title,
        new_messages=[msg(1, 1, author=author, text=title)],
        from_name=name,
    )
    parsed = parse(build_mime(email, text_body=title, html_body="<p>x</p>", date=T0))
    assert set(parsed.keys()) == BASE_HEADERS
    assert parsed["Message-ID"] == email.message_id
    assert parsed["X-Loop"] == LOOP_TAG
