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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import compat32
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from services.domain.model import EmailStatus
from services.domain.verp import bounce_signature_ok, find_bounce_tokens
from services.incoming.parse import ParsedMail
from services.mail.blocked import HARD_BOUNCE_LIMIT
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import Email, MailBounce
from services.store.prepared import Prepared
from services.views import ChangeKind

__all__ = [
    "BounceDecision",
    "BounceOutcome",
    "DeliveryReport",
    "RecipientStatus",
    "SentEmail",
    "Tally",
    "apply_report",
    "judge",
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


@dataclass(frozen=True, slots=True)
class SentEmail:
    """The email a report is about, as the decision needs it."""

    id: int
    status: EmailStatus
    to_addrs: tuple[str, ...]
    conversation_id: int | None
    item_number: int | None


@dataclass(frozen=True, slots=True)
class Tally:
    """An address's bounce counts (a `mail_bounces` row; all zero when it has none)."""

    hard_bounces: int = 0
    soft_bounces: int = 0
    last_status: str = ""
    last_reason: str = ""
    last_at: datetime | None = None
    blocked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BounceDecision:
    """What a report changes: the email's status and reason, and each address's tally."""

    outcome: BounceOutcome
    status: EmailStatus | None = None  # the email's status after the report
    reason: str = ""
    tallies: tuple[tuple[str, Tally], ...] = ()  # (lowercased address, its new tally)


def judge(
    report: DeliveryReport,
    email: SentEmail,
    *,
    found_by: str,
    tallies: Mapping[str, Tally],
    now: datetime,
) -> BounceDecision:
    """E7: what `report` says about `email`, found `found_by`, given the addresses' tallies."""
    said = list(_whom(report, email, by_token=found_by == "bounce address"))
    said = [(a, r) for a, r in said if r.failed or r.action == "delayed"]
    if not said:
        return BounceDecision(
            BounceOutcome(email_id=None, action="names no recipient of the email it is about")
        )
    bounced = {a.lower() for a, r in said if r.failed}
    first_bounce = email.status != EmailStatus.BOUNCED
    status = email.status
    if status == EmailStatus.SENT and bounced >= {a.lower() for a in email.to_addrs}:
        status = EmailStatus.BOUNCED  # a row still retrying keeps retrying the others
    counted = dict(tallies)
    for address, r in said:
        key = address.lower()
        counted[key] = _count(counted.get(key, Tally()), r, counts=first_bounce, now=now)
    what = "bounce" if bounced else "delay"
    return BounceDecision(
        outcome=BounceOutcome(
            email_id=email.id,
            action=(
                f"recorded a {what} of email {email.id} for "
                + ", ".join(f"{a} ({r.status})" for a, r in said)
            )[:200],
            found_by=found_by,
            conversation_id=email.conversation_id,
            item_number=email.item_number,
        ),
        status=status,
        reason="; ".join(r.reason for _, r in said)[:500],
        tallies=tuple((k, v) for k, v in counted.items() if v != tallies.get(k)),
    )


def _whom(
    report: DeliveryReport, email: SentEmail, *, by_token: bool
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


def _count(tally: Tally, r: RecipientStatus, *, counts: bool, now: datetime) -> Tally:
    """The address's tally after `r`; repeated hard bounces block it (services.mail.blocked)."""
    hard, soft = tally.hard_bounces, tally.soft_bounces
    if r.hard and counts:
        hard += 1
    elif not r.hard:
        soft += 1
    blocked_at = tally.blocked_at
    if blocked_at is None and hard >= HARD_BOUNCE_LIMIT:
        blocked_at = now
    return Tally(
        hard_bounces=hard,
        soft_bounces=soft,
        last_status=r.status,
        last_reason=r.reason,
        last_at=now,
        blocked_at=blocked_at,
    )


# --- the look-ups and writes, inside the intake's unit of work -----------------------------

_SENT_COLUMNS = (
    Email.id,
    Email.status,
    Email.to_addrs,
    Email.conversation_id,
    Email.item_number,
)
_BY_ID = Prepared(
    select(*_SENT_COLUMNS, Email.direction, Email.uid).where(Email.id == bindparam("email_id"))
)
_BY_MESSAGE_ID = Prepared(
    select(*_SENT_COLUMNS)
    .where(
        Email.message_id == bindparam("message_id"),
        Email.direction == "out",
        Email.status.in_([s.value for s in _ACCEPTED]),
    )
    .limit(1)
)
_TALLY_COLUMNS = (
    MailBounce.hard_bounces,
    MailBounce.soft_bounces,
    MailBounce.last_status,
    MailBounce.last_reason,
    MailBounce.last_at,
    MailBounce.blocked_at,
)
_TALLY = Prepared(select(*_TALLY_COLUMNS).where(MailBounce.address == bindparam("address")))
_UPDATE_EMAIL = Prepared(
    update(Email)
    .where(Email.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), reason=bindparam("b_reason"))
)
_INSERT_TALLY = Prepared(insert(MailBounce))
_UPDATE_TALLY = Prepared(
    update(MailBounce)
    .where(MailBounce.address == bindparam("b_address"))
    .values({c.key: bindparam(f"b_{c.key}") for c in _TALLY_COLUMNS})
)


def _sent(row: tuple[Any, ...]) -> SentEmail:
    email_id, status, to_addrs, conversation_id, item_number = row[:5]
    assert isinstance(email_id, int) and isinstance(to_addrs, list)
    return SentEmail(
        id=email_id,
        status=EmailStatus(status),
        to_addrs=tuple(str(a) for a in to_addrs),
        conversation_id=conversation_id if isinstance(conversation_id, int) else None,
        item_number=item_number if isinstance(item_number, int) else None,
    )


def _the_email(tx: Tx, report: DeliveryReport, key: bytes) -> tuple[SentEmail, str] | None:
    """The email a report is about, and how it was found; only one the server accepted."""
    for email_id, signature in find_bounce_tokens(" ".join(report.addresses)):
        rows = tx.run(_BY_ID, {"email_id": email_id})
        if not rows:
            continue
        *sent, direction, uid = rows[0]
        email = _sent(tuple(sent))
        if (
            direction == "out"
            and email.status in _ACCEPTED
            and bounce_signature_ok(key=key, email_id=email.id, email_uid=uid, signature=signature)
        ):
            return email, "bounce address"
    for message_id in report.original_message_ids:
        rows = tx.run(_BY_MESSAGE_ID, {"message_id": f"<{message_id}>"})
        if rows:
            return _sent(rows[0]), "Message-ID"
    return None


def _tallies(tx: Tx, addresses: Iterable[str]) -> dict[str, Tally]:
    found = {}
    for address in dict.fromkeys(a.lower() for a in addresses):
        rows = tx.run(_TALLY, {"address": address})
        if rows:
            found[address] = Tally(*rows[0])
    return found


def apply_report(tx: Tx, *, report: DeliveryReport, now: datetime, key: bytes) -> BounceOutcome:
    """Record what `report` says about the email it names, in the caller's unit of work."""
    found = _the_email(tx, report, key)
    if found is None:
        return BounceOutcome(email_id=None, action="names no email we sent")
    email, found_by = found
    tallies = _tallies(tx, email.to_addrs)
    decision = judge(report, email, found_by=found_by, tallies=tallies, now=now)
    if decision.outcome.email_id is None:
        return decision.outcome
    tx.run(
        _UPDATE_EMAIL,
        {
            "b_id": email.id,
            "b_status": (decision.status or email.status).value,
            "b_reason": decision.reason,
        },
    )
    for address, tally in decision.tallies:
        if tally.blocked_at == now and (tallies.get(address) or Tally()).blocked_at is None:
            log.warning(
                "%s bounced %d times; no more email goes to it until an administrator clears it",
                address,
                tally.hard_bounces,
            )
        values = {c.key: getattr(tally, c.key) for c in _TALLY_COLUMNS}
        if address in tallies:
            changed = {f"b_{k}": v for k, v in values.items()}
            tx.run(_UPDATE_TALLY, {"b_address": address, **changed})
        else:
            tx.run(_INSERT_TALLY, {"address": address, **values})
    record_change(tx, kind=ChangeKind.EMAIL, at=now, conversation_id=email.conversation_id)
    return decision.outcome
