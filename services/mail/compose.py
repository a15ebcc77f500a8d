"""Queueing a template email for the outbox: rendered, composed with our identity
(`services.mail.identity`) (E7: its bytes are fixed when it is queued).

A stored template that fails at render time sends nothing: `queue_template_email` logs an
Email row with status `failed` and the reason instead, so *Incoming & Outgoing* says why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime

from services.domain.email_plan import AUTO_HEADERS
from services.domain.headers import (
    format_address,
    normalize_address,
)
from services.domain.mime import compose
from services.domain.model import EmailStatus
from services.errors import InputError
from services.mail.caps import cap_reason, count_recent_sends
from services.mail.identity import MailIdentity
from services.store.changes import record_change
from services.store.database import Tx
from services.store.email_bodies import store_bodies
from services.store.models import Email, EmailTemplate
from services.template_catalog import RenderedEmail, render_template
from services.views import ChangeKind

__all__ = [
    "queue_rendered_email",
    "queue_template_email",
]

log = logging.getLogger(__name__)


def _compose(
    *,
    rendered: RenderedEmail,
    identity: MailIdentity,
    to_name: str,
    to_addr: str,
    uid: str,
    now: datetime,
) -> tuple[bytes, str]:
    message_id = f"<{uid}@{identity.message_id_domain}>"
    raw = compose(
        headers=[
            ("From", format_address(name=identity.from_name, address=identity.from_addr)),
            ("To", format_address(name=to_name, address=to_addr)),
            ("Subject", rendered.subject),
            ("Message-ID", message_id),
            *AUTO_HEADERS,
        ],
        date=now,
        text=rendered.text,
        html=rendered.html or None,
    )
    return raw, message_id


def queue_template_email(
    tx: Tx,
    *,
    template: EmailTemplate,
    variables: Mapping[str, object],
    to_addr: str,
    to_name: str,
    identity: MailIdentity,
    now: datetime,
    kind: str,
    recipient_id: int | None = None,
    item_number: int | None = None,
    conversation_id: int | None = None,
    suppress_reason: str | None = None,
) -> Email:
    """One outbox row for one recipient, in the caller's transaction; the outbox sends it.

    A render failure queues nothing: the row is logged as failed with the reason. A
    `suppress_reason` logs it as suppressed (R2, a disabled email) without rendering.
    """
    rendered: RenderedEmail | None = None
    failure: str | None = None
    if suppress_reason is None and (recipient_id is not None or conversation_id is not None):
        sends = count_recent_sends(
            tx,
            conversation_ids=[conversation_id] if conversation_id is not None else [],
            recipient_ids=[recipient_id] if recipient_id is not None else [],
            now=now,
        )
        suppress_reason = cap_reason(
            sends, conversation_id=conversation_id, recipient_id=recipient_id
        )  # I6: automations and system emails count against the same caps
    if suppress_reason is None:
        try:
            rendered = render_template(
                name=template.name,
                subject=template.subject,
                body_text=template.body_text,
                body_html=template.body_html,
                variables=variables,
            )
        except InputError as exc:
            log.warning("template %s did not render for %s: %s", template.name, to_addr, exc)
            failure = f"template did not render: {exc}"
    return queue_rendered_email(
        tx,
        rendered=rendered,
        failure=failure,
        suppress_reason=suppress_reason,
        template_name=template.name,
        to_addr=to_addr,
        to_name=to_name,
        identity=identity,
        now=now,
        kind=kind,
        recipient_id=recipient_id,
        item_number=item_number,
        conversation_id=conversation_id,
    )


def queue_rendered_email(
    tx: Tx,
    *,
    rendered: RenderedEmail | None,
    template_name: str | None,
    to_addr: str,
    to_name: str,
    identity: MailIdentity,
    now: datetime,
    kind: str,
    failure: str | None = None,
    suppress_reason: str | None = None,
    recipient_id: int | None = None,
    item_number: int | None = None,
    conversation_id: int | None = None,
) -> Email:
    """Write the Email row: queued with its bytes fixed now (E7), or failed/suppressed and why."""
    uid = uuid.uuid4().hex
    address = normalize_address(to_addr)
    email = Email(
        direction="out",
        kind=kind,
        status=EmailStatus.QUEUED,
        uid=uid,
        from_addr=identity.from_addr,
        to_addrs=[address],
        subject=rendered.subject if rendered else "",
        recipient_id=recipient_id,
        item_number=item_number,
        conversation_id=conversation_id,
        template_name=template_name,
        created_at=now,
        next_attempt_at=now,
    )
    raw: bytes | None = None
    if rendered is None or suppress_reason is not None:
        email.status = EmailStatus.SUPPRESSED if suppress_reason else EmailStatus.FAILED
        email.reason = (suppress_reason or failure or "nothing to send")[:500]
        email.next_attempt_at = None
    else:
        raw, message_id = _compose(
            rendered=rendered, identity=identity, to_name=to_name, to_addr=address, uid=uid, now=now
        )
        email.body_text = rendered.text
        email.message_id = message_id
    tx.session.add(email)
    tx.session.flush()
    if raw is not None:
        store_bodies(tx, [(email.id, raw)])
    record_change(tx, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id)
    return email
