"""Settings' "Send test email" (E9): a short plain email sent at once, past the outbox, and
logged in *Incoming & Outgoing* with kind "test", as sent or failed, never pending (so the
outbox leaves it alone)."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.domain.email_plan import AUTO_HEADERS
from services.domain.headers import format_address
from services.domain.mime import compose
from services.domain.model import EmailStatus
from services.email_log import log_email
from services.errors import MailServerError, MailServerUnreachableError
from services.mail.identity import MailIdentity
from services.mail.smtp import Outgoing, SmtpSender, SmtpSettings, SmtpVerdict
from services.store.database import Database

__all__ = ["SUBJECT", "send_trial_email"]

SUBJECT = "Deskbell test email"


def _body(settings: SmtpSettings) -> str:
    return (
        "This is a test email from Deskbell.\n\n"
        f"It was sent through {settings.host}:{settings.port} "
        f"({settings.security.value}). If you can read it, notification emails "
        "will reach people too.\n"
    )


async def send_trial_email(
    db: Database, *, settings: SmtpSettings, identity: MailIdentity, to: str, now: datetime
) -> str:
    """Send it now to `to`, an address already normalised; returns the server's answer
    ("250 ..."); MailServerUnreachableError or MailServerError with the server's words
    otherwise. Logged either way."""
    uid = uuid.uuid4().hex
    body = _body(settings)
    message_id = f"<test-{uid}@{identity.message_id_domain}>"
    raw = compose(
        headers=[
            ("From", format_address(name=identity.from_name, address=identity.from_addr)),
            ("To", to),
            ("Subject", SUBJECT),
            ("Message-ID", message_id),
            *AUTO_HEADERS,  # I6: our own mail coming back is recognised
        ],
        date=now,
        text=body,
    )
    async with SmtpSender(settings=settings) as sender:
        outcome = await sender.send(
            Outgoing(key=0, sender=identity.from_addr, recipients=(to,), data=raw)
        )
    sent = outcome.verdict is SmtpVerdict.SENT
    answer = f"{outcome.code} {outcome.reply}" if outcome.code is not None else outcome.reply
    await db.write(
        log_email,
        direction="out",
        kind="test",
        status=(EmailStatus.SENT if sent else EmailStatus.FAILED).value,
        uid=uid,
        message_id=message_id,
        from_addr=identity.from_addr,
        to_addrs=[to],
        subject=SUBJECT,
        body_text=body,
        raw=raw,
        attempts=1,
        reply=answer,
        reason=None if sent else answer,
        created_at=now,
        sent_at=now if sent else None,
    )
    if sent:
        return answer
    if outcome.code is None:
        raise MailServerUnreachableError(answer)
    raise MailServerError(f"the server refused the test email: {answer}")
