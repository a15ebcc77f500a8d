"""Delivery status notifications as real mail systems write them (E7): who, what, which email."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.domain.model import EmailStatus
from services.domain.verp import bounce_address, bounce_signature_ok, find_bounce_tokens
from services.incoming.bounces import (
    DeliveryReport,
    RecipientStatus,
    SentEmail,
    judge,
    looks_like_report,
    read_report,
)
from services.incoming.parse import parse_mail

CORPUS = Path(__file__).resolve().parents[4] / "tests" / "corpus"
KEY = b"k" * 32


def report_of(name: str) -> DeliveryReport:
    raw = (CORPUS / name).read_bytes().replace(b"ORIGINAL-MESSAGE-ID", b"c1r2-x.1@deskbell.test")
    report = read_report(raw)
    assert report is not None, name
    return report


@pytest.mark.parametrize(
    ("name", "action", "status", "words"),
    [
        ("bounce_postfix.eml", "failed", "5.1.1", "User unknown in local recipient table"),
        ("bounce_exim.eml", "failed", "5.0.0", "550 5.1.1 <bob@example.com>: No such user here"),
        ("bounce_exim_plain.eml", "failed", "5.1.1", "550 5.1.1 User unknown"),
        ("bounce_gmail.eml", "failed", "5.1.1", "The email account that you tried to reach"),
        ("bounce_microsoft.eml", "failed", "5.1.10", "RESOLVER.ADR.RecipientNotFound"),
        ("bounce_postfix_delayed.eml", "delayed", "4.4.1", "Connection timed out"),
        ("bounce_postfix_expired.eml", "failed", "4.4.1", "Connection timed out"),
    ],
)
def test_e7_each_mail_systems_report_is_read(
    name: str, action: str, status: str, words: str
) -> None:
    report = report_of(name)
    [recipient] = report.recipients
    assert recipient.address == "bob@example.com"
    assert (recipient.action, recipient.status) == (action, status)
    assert words in recipient.diagnostic
    assert "\n" not in recipient.diagnostic
    assert report.original_message_ids == ("c1r2-x.1@deskbell.test",)
    assert any("support+VERP@deskbell.test" in a for a in report.addresses)
    assert recipient.hard is (status.startswith("5") and action == "failed")


def test_e7_every_report_in_the_corpus_is_seen_as_one() -> None:
    for path in CORPUS.glob("bounce_*.eml"):
        assert looks_like_report(parse_mail(path.read_bytes())), path.name


@pytest.mark.parametrize("name", ["normal_new.eml", "reply_gmail.eml", "loop_auto_submitted.eml"])
def test_e7_other_mail_is_no_report(name: str) -> None:
    assert read_report((CORPUS / name).read_bytes()) is None


def test_e7_a_broken_report_is_no_report_and_no_crash() -> None:
    raw = (
        b"From: MAILER-DAEMON@x.org\r\nContent-Type: multipart/report; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--\r\n"
    )
    report = read_report(raw)
    assert report is not None and report.recipients == ()


def test_e7_bounce_address_names_the_email_and_is_signed() -> None:
    address = bounce_address(
        from_addr="support@deskbell.test", key=KEY, email_id=42, email_uid="abc123"
    )
    local, _, domain = address.partition("@")
    assert domain == "deskbell.test" and local.startswith("support+b42-")
    [(email_id, signature)] = find_bounce_tokens(f"To: <{address}>")
    assert email_id == 42
    assert bounce_signature_ok(key=KEY, email_id=42, email_uid="abc123", signature=signature)
    # Another uid (an id reused after the log's purge), another key, a changed id: no match.
    assert not bounce_signature_ok(key=KEY, email_id=42, email_uid="abc124", signature=signature)
    assert not bounce_signature_ok(
        key=b"x" * 32, email_id=42, email_uid="abc123", signature=signature
    )
    assert not bounce_signature_ok(key=KEY, email_id=43, email_uid="abc123", signature=signature)


def test_e7_a_bounce_address_too_long_for_a_local_part_falls_back_to_the_from_address() -> None:
    long_from = "a-very-long-help-desk-notification-sender-name@deskbell.test"
    assert bounce_address(from_addr=long_from, key=KEY, email_id=10**12, email_uid="u") == long_from


# --- what a report changes, judged without a database (issue 9) -----------------------------


def _report(*recipients: RecipientStatus) -> DeliveryReport:
    return DeliveryReport(recipients=recipients, original_message_ids=(), addresses=())


def _status(address: str, action: str, status: str) -> RecipientStatus:
    return RecipientStatus(
        address=address, original=None, action=action, status=status, diagnostic="no"
    )


SENT = SentEmail(
    id=7,
    status=EmailStatus.SENT,
    to_addrs=("Bob@Example.com",),
    conversation_id=3,
    item_number=1,
)
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_e7_a_hard_bounce_marks_the_email_and_the_third_blocks_the_address() -> None:
    report = _report(_status("bob@example.com", "failed", "5.1.1"))
    first = judge(report, SENT, found_by="Message-ID", tallies={}, now=AT)
    assert first.status is EmailStatus.BOUNCED
    assert first.outcome.email_id == 7 and first.outcome.item_number == 1
    [(address, tally)] = first.tallies
    assert address == "bob@example.com"
    assert (tally.hard_bounces, tally.blocked_at) == (1, None)
    third = judge(
        report,
        SENT,
        found_by="Message-ID",
        tallies={address: replace(tally, hard_bounces=2)},
        now=AT,
    )
    assert third.tallies[0][1].blocked_at == AT
    again = judge(
        report, replace(SENT, status=EmailStatus.BOUNCED), found_by="x", tallies={}, now=AT
    )
    assert again.tallies[0][1].hard_bounces == 0  # one email's bounces count once


def test_e7_a_delay_counts_as_soft_and_keeps_the_email_sent() -> None:
    decision = judge(
        _report(_status("bob@example.com", "delayed", "4.4.1")),
        SENT,
        found_by="bounce address",
        tallies={},
        now=AT,
    )
    assert decision.status is EmailStatus.SENT
    assert decision.tallies[0][1].soft_bounces == 1
    assert decision.outcome.action.startswith("recorded a delay of email 7")


def test_e7_a_report_about_someone_else_changes_nothing() -> None:
    decision = judge(
        _report(_status("carol@example.com", "failed", "5.1.1")),
        SENT,
        found_by="Message-ID",
        tallies={},
        now=AT,
    )
    assert decision.outcome.email_id is None and decision.tallies == ()
