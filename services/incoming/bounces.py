"""Delivery status notifications (E7, M6): which email bounced, for whom, and why.

`read_report` reads an RFC 3464 report (Postfix, Exim, Gmail, Microsoft and most others) or
the plain-text bounce older Exim versions send (`X-Failed-Recipients`). `apply_report` finds
the email it is about — by the signed bounce address it was sent from (VERP, see
`services.domain.verp`), else by the attached original's Message-ID — and records, for each
recipient of that email the report names, what happened: *bounced* with the reason, or a
delay. A report that names no email we sent, or a forged token, changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import compat32

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.model import EmailStatus
from services.domain.verp import bounce_signature_ok, find_bounce_tokens
from services.incoming.parse import ParsedMail
from services.mail.blocked import HARD_BOUNCE_LIMIT
from services.store import queries
from services.store.models import Email, MailBounce
from services.views import ChangeKind

__all__ = [
    "BounceOutcome",
    "DeliveryReport",
    "RecipientStatus",
    "apply_report",
    "looks_like_report",
    "read_report",
]

log = logging.getLogger(__name__)

_MAX_PARTS = 200
_MAX_TEXT = 200_000  # of a plain-text bounce's body, searched for codes and the Message-ID
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global")
_HEADER_TYPES = ("text/rfc822-headers", "message/global-headers")
# Where the bounce address shows: the report's own envelope headers, and what it says of
# the original's envelope sender.
_ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE_RE = re.compile(r"\b([45])\d\d\b")
_MSG_ID_RE = re.compile(r"<([^<>\s]{1,250}@[^<>\s]{1,250})>")
_MSG_ID_LINE_RE = re.compile(r"^Message-I[Dd]:[ \t]*(<[^<>\s]+>)", re.MULTILINE)
_ACCEPTED = (EmailStatus.SENT, EmailStatus.BOUNCED, EmailStatus.RETRYING)


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's block of a report."""

    address: str  # Final-Recipient, lowercased
    original: str | None  # Original-Recipient, lowercased
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # "5.1.1"
    diagnostic: str  # the remote server's words, on one line

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    @property
    def hard(self) -> bool:
        """A permanent failure: the only kind that counts toward blocking the address."""
        return self.failed and self.status.startswith("5")

    @property
    def reason(self) -> str:
        words = self.diagnostic or "no reason given"
        if self.hard:
            return f"bounced ({self.status}): {words}"[:500]
        if self.failed:
            return f"bounced, temporary failure ({self.status}): {words}"[:500]
        return f"delayed by the receiving side ({self.status}): {words}"[:500]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    recipients: tuple[RecipientStatus, ...]
    original_message_ids: tuple[str, ...]  # without angle brackets
    addresses: tuple[str, ...]  # where a bounce address may show


@dataclass(frozen=True, slots=True)
class BounceOutcome:
    """What a report did; `email_id` None when it named no email we sent."""

    email_id: int | None
    action: str
    found_by: str = ""
    conversation_id: int | None = None
    item_number: int | None = None


def _text(value: object) -> str:
    return " ".join(str(value or "").split())


def _address(value: object) -> str | None:
    """The address of an `rfc822; bob@example.com` field, lowercased."""
    text = _text(value)
    if not text:
        return None
    kind, semicolon, rest = text.partition(";")
    address = (rest if semicolon else kind).strip().strip("<>").strip().lower()
    return address if "@" in address else None


def _blocks(part: Message) -> list[Message]:
    """The field groups of a delivery-status part (per message first, then per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    if not isinstance(payload, str):
        return []
    groups = re.split(r"\r?\n[ \t]*\r?\n", payload.strip())
    return [message_from_string(g.strip() + "\n\n", policy=compat32) for g in groups if g.strip()]


def _recipient(block: Message) -> RecipientStatus | None:
    final = _address(block.get("Final-Recipient"))
    action = _text(block.get("Action")).lower().split(" ")[0]
    if final is None or not action:
        return None
    status = _STATUS_RE.search(_text(block.get("Status")))
    diagnostic = _text(block.get("Diagnostic-Code"))
    kind, semicolon, rest = diagnostic.partition(";")
    if semicolon and " " not in kind.strip():
        diagnostic = rest.strip()
    return RecipientStatus(
        address=final,
        original=_address(block.get("Original-Recipient")),
        action=action,
        status=".".join(status.groups())
        if status
        else ("5.0.0" if action == "failed" else "4.0.0"),
        diagnostic=diagnostic[:300],
    )


def _headers_of(part: Message) -> Message | None:
    """The original email's headers, from a message/rfc822 or text/rfc822-headers part."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return message_from_string(payload.lstrip("\r\n"), policy=compat32)
    return None


def _plain_text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return data[:_MAX_TEXT].decode("utf-8", "replace")
    return ""


def _plain_bounce(msg: Message, addresses: list[str]) -> DeliveryReport | None:
    """Exim before multipart reports: failed recipients in a header, the copy in the body."""
    failed = [a.strip().lower() for a in _text(msg.get("X-Failed-Recipients")).split(",")]
    failed = [a for a in failed if "@" in a]
    if not failed:
        return None
    body = _plain_text(msg)
    status = _STATUS_RE.search(body)
    code_line = next((line for line in body.splitlines() if _SMTP_CODE_RE.search(line)), "")
    code = _SMTP_CODE_RE.search(code_line)
    status_text = (
        ".".join(status.groups()) if status else f"{code.group(1)}.0.0" if code else "5.0.0"
    )
    copy = body.split("This is a copy of the message", 1)[-1]
    ids = [m.strip("<>") for m in _MSG_ID_LINE_RE.findall(copy)]
    addresses.extend(re.findall(r"^Return-path:[ \t]*(.+)$", copy, re.IGNORECASE | re.MULTILINE))
    recipients = tuple(
        RecipientStatus(
            address=a,
            original=None,
            action="failed",
            status=status_text,
            diagnostic=_text(code_line)[:300],
        )
        for a in failed
    )
    return DeliveryReport(recipients, tuple(ids), tuple(addresses))


def looks_like_report(mail: ParsedMail) -> bool:
    """Cheap first look: only such mail is read again as a report."""
    return any(t in _STATUS_TYPES for t in mail.content_types) or bool(
        mail.header("X-Failed-Recipients")
    )


def read_report(raw: bytes) -> DeliveryReport | None:
    """The report in `raw`, or None if it is no delivery status notification. Never raises."""
    try:
        return _read(raw)
    except Exception:  # a malformed report is no report: the mail is logged as it is
        log.warning("could not read a delivery report", exc_info=True)
        return None


def _read(raw: bytes) -> DeliveryReport | None:
    msg = message_from_bytes(raw, policy=compat32)
    addresses = [_text(v) for h in _ADDRESS_HEADERS for v in (msg.get_all(h) or [])]
    recipients: list[RecipientStatus] = []
    ids: list[str] = []
    found_status = False
    for count, part in enumerate(msg.walk()):
        if count >= _MAX_PARTS:
            break
        ctype = part.get_content_type()
        if ctype in _STATUS_TYPES:
            found_status = True
            for block in _blocks(part):
                ids.extend(_MSG_ID_RE.findall(_text(block.get("X-Original-Message-ID"))))
                addresses.append(_text(block.get("X-Postfix-Sender")))
                recipient = _recipient(block)
                if recipient is not None:
                    recipients.append(recipient)
        elif ctype in _ORIGINAL_TYPES or ctype in _HEADER_TYPES:
            original = _headers_of(part)
            if original is not None:
                ids.extend(_MSG_ID_RE.findall(_text(original.get("Message-ID"))))
                addresses.append(_text(original.get("Return-Path")))
    if not found_status:
        return _plain_bounce(msg, addresses)
    return DeliveryReport(
        tuple(recipients), tuple(dict.fromkeys(ids)), tuple(a for a in addresses if a)
    )


async def _the_email(
    session: AsyncSession, report: DeliveryReport, key: bytes
) -> tuple[Email, str] | None:
    """The email a report is about, and how it was found; only one the server accepted."""
    for email_id, signature in find_bounce_tokens(" ".join(report.addresses)):
        email = await session.get(Email, email_id)
        if (
            email is not None
            and email.direction == "out"
            and email.status in _ACCEPTED
            and bounce_signature_ok(
                key=key, email_id=email.id, email_uid=email.uid, signature=signature
            )
        ):
            return email, "bounce address"
    for message_id in report.original_message_ids:
        email = await session.scalar(
            select(Email)
            .where(
                Email.message_id == f"<{message_id}>",
                Email.direction == "out",
                Email.status.in_(_ACCEPTED),
            )
            .limit(1)
        )
        if email is not None:
            return email, "Message-ID"
    return None


def _whom(
    report: DeliveryReport, email: Email, *, by_token: bool
) -> Iterable[tuple[str, RecipientStatus]]:
    """The report's recipients that are this email's, as the email spells them."""
    ours = {a.lower(): a for a in email.to_addrs}
    for r in report.recipients:
        if r.address in ours:
            yield ours[r.address], r
        elif r.original is not None and r.original in ours:
            yield ours[r.original], r
        elif by_token and len(ours) == 1:
            # The signed bounce address names this email; a forwarding hop may have changed
            # the recipient's address on the way.
            yield next(iter(ours.values())), r


async def apply_report(
    session: AsyncSession, *, report: DeliveryReport, now: datetime, key: bytes
) -> BounceOutcome:
    """Record what `report` says about the email it names, in the caller's transaction."""
    found = await _the_email(session, report, key)
    if found is None:
        return BounceOutcome(email_id=None, action="names no email we sent")
    email, found_by = found
    said = list(_whom(report, email, by_token=found_by == "bounce address"))
    said = [(a, r) for a, r in said if r.failed or r.action == "delayed"]
    if not said:
        return BounceOutcome(email_id=None, action="names no recipient of the email it is about")
    bounced = {a.lower() for a, r in said if r.failed}
    first_bounce = email.status != EmailStatus.BOUNCED
    if email.status == EmailStatus.SENT and bounced >= {a.lower() for a in email.to_addrs}:
        email.status = EmailStatus.BOUNCED  # a row still retrying keeps retrying the others
    for address, r in said:
        await _count(session, address, r, counts=first_bounce, now=now)
    email.reason = "; ".join(r.reason for _, r in said)[:500]
    queries.add_change(
        session, kind=ChangeKind.EMAIL, at=now, conversation_id=email.conversation_id
    )
    what = "bounce" if bounced else "delay"
    return BounceOutcome(
        email_id=email.id,
        action=(
            f"recorded a {what} of email {email.id} for "
            + ", ".join(f"{a} ({r.status})" for a, r in said)
        )[:200],
        found_by=found_by,
        conversation_id=email.conversation_id,
        item_number=email.item_number,
    )


async def _count(
    session: AsyncSession, address: str, r: RecipientStatus, *, counts: bool, now: datetime
) -> None:
    """Keep the address's tally; repeated hard bounces block it (services.mail.blocked)."""
    key = address.lower()
    row = await session.get(MailBounce, key)
    if row is None:
        row = MailBounce(address=key, hard_bounces=0, soft_bounces=0)
        session.add(row)
    if r.hard and counts:
        row.hard_bounces += 1
    elif not r.hard:
        row.soft_bounces += 1
    row.last_status = r.status
    row.last_reason = r.reason
    row.last_at = now
    if row.blocked_at is None and row.hard_bounces >= HARD_BOUNCE_LIMIT:
        row.blocked_at = now
        log.warning(
            "%s bounced %d times; no more email goes to it until an administrator clears it",
            key,
            row.hard_bounces,
        )
