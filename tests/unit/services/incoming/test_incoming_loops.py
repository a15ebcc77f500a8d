"""Loop and flood rules (I6): each rule gives its reason, normal mail none; rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.incoming.loops import SenderHold, loop_reason
from services.incoming.parse import parse_mail

CORPUS = Path(__file__).resolve().parents[4] / "tests" / "corpus"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def reason_for(name: str) -> str | None:
    mail = parse_mail((CORPUS / name).read_bytes())
    return loop_reason(mail, own_addresses={"Support@deskbell.test"}, own_domains={"deskbell.test"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loop_auto_submitted.eml", "auto-submitted mail (Auto-Submitted: auto-replied)"),
        ("loop_precedence_bulk.eml", "bulk mail (Precedence: bulk)"),
        ("loop_x_autoreply.eml", "auto-reply (X-Autoreply header)"),
        ("loop_list_id.eml", "mailing list mail (List-Id header)"),
        ("loop_return_path_empty.eml", "bounce (empty Return-Path)"),
        ("loop_mailer_daemon_dsn.eml", "mail from the mail system (mailer-daemon)"),
        ("loop_postmaster.eml", "mail from the mail system (postmaster)"),
        ("loop_delivery_report.eml", "delivery report (message/delivery-status)"),
        ("loop_x_loop.eml", "our own mail came back (X-Loop: deskbell)"),
        (
            "loop_own_message_id.eml",
            "our own mail came back (Message-ID domain deskbell.deskbell.test)",
        ),
        ("loop_own_address.eml", "sent from our own address (support@deskbell.test)"),
    ],
)
def test_i6_each_loop_rule_gives_its_reason(name: str, expected: str) -> None:
    assert reason_for(name) == expected


@pytest.mark.parametrize(
    "name", ["normal_new.eml", "reply_gmail.eml", "reply_outlook.eml", "reply_html_only.eml"]
)
def test_i6_normal_mail_is_no_loop(name: str) -> None:
    assert reason_for(name) is None


@pytest.mark.parametrize(
    ("header", "looping"),
    [
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: auto-generated; type=ooo", True),
        ("Precedence: first-class", False),
        ("Precedence: JUNK", True),
        ("Precedence: auto_reply", True),
        ("X-Autorespond: whatever", True),
        ("X-Autoresponder: 1", True),
        ("List-Unsubscribe: <mailto:x@y.z>", True),
        ("Return-Path: < >", True),
        ("Return-Path: <bounce@example.org>", False),
        ("X-Loop: somebody-else", False),
        ("Content-Type: multipart/report; report-type=delivery-status; boundary=z", True),
    ],
)
def test_i6_header_variants(header: str, looping: bool) -> None:
    raw = f"From: Carl <carl@example.org>\r\n{header}\r\nMessage-ID: <1@example.org>\r\n\r\nhi"
    mail = parse_mail(raw.encode())
    reason = loop_reason(mail, own_addresses=(), own_domains=("deskbell.test",))
    assert (reason is not None) is looping, reason


def test_i6_system_sender_in_any_case_and_without_domain() -> None:
    for sender in ("Mailer-Daemon@Example.COM", "MAILER-DAEMON", "postmaster@mx.example.net"):
        mail = parse_mail(f"From: {sender}\r\n\r\nx".encode())
        assert loop_reason(mail, own_addresses=(), own_domains=()) is not None, sender
    mail = parse_mail(b"From: Postmaster Fan <fan@example.org>\r\n\r\nx")
    assert loop_reason(mail, own_addresses=(), own_domains=()) is None


def test_i6_own_message_id_subdomain_and_custom_loop_tag() -> None:
    mail = parse_mail(b"From: c@example.org\r\nMessage-ID: <x@mail.Deskbell.test>\r\n\r\nx")
    assert loop_reason(mail, own_addresses=(), own_domains=("deskbell.test",)) is not None
    tagged = parse_mail(b"From: c@example.org\r\nX-Loop: helpdesk-7\r\n\r\nx")
    assert loop_reason(tagged, own_addresses=(), own_domains=()) is None
    assert loop_reason(tagged, own_addresses=(), own_domains=(), loop_tag="helpdesk-7")


def test_i6_sender_held_after_more_than_15_in_10_minutes() -> None:
    hold = SenderHold()
    for i in range(15):
        assert hold.record("Flood@Example.org", T0 + timedelta(seconds=30 * i)) is None
    t16 = T0 + timedelta(minutes=8)
    assert hold.record("flood@example.org", t16) == "sender held: more than 15 mails in 10 minutes"
    assert hold.record("other@example.org", t16) is None
    # Still held just before the 15 minutes are over, free after.
    assert hold.record("flood@example.org", t16 + timedelta(minutes=14, seconds=59)) is not None
    assert hold.record("flood@example.org", t16 + timedelta(minutes=15)) is None


def test_i6_sender_window_slides() -> None:
    hold = SenderHold()
    for i in range(40):  # one mail a minute: never more than 10 in 10 minutes
        assert hold.record("steady@example.org", T0 + timedelta(minutes=i)) is None


def test_i6_sender_hold_state_round_trips() -> None:
    hold = SenderHold()
    for i in range(16):
        hold.record("flood@example.org", T0 + timedelta(seconds=i))
    hold.record("one@example.org", T0)
    state = hold.snapshot()
    assert all(isinstance(row, tuple) for row in state)
    again = SenderHold()
    again.restore(state)
    assert again.snapshot() == state
    assert again.record("flood@example.org", T0 + timedelta(minutes=1)) is not None
