"""Email templates kept in the database: the Automated and System emails of M4 and M5.

Every template has a subject, a plain-text body and an HTML body, all Jinja2 run in the same
sandbox as the notification emails (`services.templates`). What a template may use depends
on its kind, and is documented by `VARIABLES` (shown in the editor and by `deskbell template
show`). A template is checked at save time: a syntax error, an unknown variable or a private
name is refused with the part and the line (M4). The built-in templates are seeded from
`resources/templates` on start; they can be edited but not deleted.

A stored template that fails at render time sends nothing: `queue_template_email` logs an
Email row with status `failed` and the reason instead, so *Incoming & Outgoing* says why.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib.resources
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Final

from sqlalchemy import select

from services.clock import Clock
from services.domain.email_plan import AUTO_HEADERS, SUBJECT_MAX_CHARS, NotificationEmail
from services.domain.headers import (
    check_header_text,
    clean_header_text,
    format_address,
    normalize_address,
)
from services.domain.mime import compose
from services.domain.model import EmailStatus
from services.errors import InputError, NotFoundError, PermissionDeniedError, quoted
from services.fallback import MailIdentity
from services.mail.caps import cap_reason, count_recent_sends
from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.models import Automation, Email, EmailTemplate

# The sandbox itself lives in services.templates; its one-template render helpers are private
# there (it only renders the two notification files), so this module reuses them as they are
# rather than building a second sandbox.
from services.templates import (
    NOTIFICATION_VARIABLES,
    TemplateError,
    TemplateRenderer,
    render_source,
    validate_template,
)
from services.views import ChangeKind

__all__ = [
    "BUILTIN_TEMPLATES",
    "INTRO_VARIABLE",
    "KINDS",
    "VARIABLES",
    "RenderedEmail",
    "StoredNotificationRenderer",
    "TemplateInfo",
    "TemplateStore",
    "allowed_variables",
    "notification_overrides",
    "notification_renderer",
    "obj",
    "queue_rendered_email",
    "queue_template_email",
    "render_sample",
    "render_template",
    "render_text",
    "sample_variables",
    "seed_templates",
    "validate_intro",
    "validate_sources",
]

log = logging.getLogger(__name__)

KINDS: Final = ("automation", "system", "notification")
INTRO_VARIABLE: Final = "intro"
NEW_MESSAGE: Final = "new_message"
PASSWORD_RESET: Final = "password_reset"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")

# What each kind of template may use (M4: the documented set). R2: no variable ever holds
# the text of an internal message for a customer; see services.automations.
VARIABLES: Final[Mapping[str, Mapping[str, str]]] = {
    "automation": {
        "item": "the item: number, title, ref ('[#12]'), status",
        "recipient": "who receives this email: name, email",
        "actor": "who caused the event: name ('Deskbell' for the system)",
        "event": "trigger ('item_closed', ...), old_status, new_status",
        "message": "for 'message posted': author, conversation, text (empty for a customer "
        "when the message is internal)",
        "workspace": "name (the From name of emails), address",
    },
    "system": {
        "person": "the new user, customer, or who asked for the reset: name, email",
        "workspace": "name (the From name of emails), address",
        "code": "password reset only: the one-time code (required there)",
        "expires_minutes": "password reset only: how long the code works",
    },
    "notification": {
        "item": "number (none in a direct conversation), title, ref ('[#12]' or '')",
        "recipient": "name",
        "conversation": "kind ('internal', 'external', 'direct'), subject",
        "messages": "the new messages, oldest first: author, time, created_at, text",
        "context": "up to three earlier messages, same shape",
        INTRO_VARIABLE: "the critical automation's text, rendered",
    },
}

BUILTIN_TEMPLATES: Final[Mapping[str, tuple[str, str]]] = {
    # name: (kind, description)
    NEW_MESSAGE: ("notification", "Unseen messages, emailed after the delay"),
    "item_closed": ("automation", "An item was closed (the shipped example automation)"),
    "welcome": ("system", "Welcome to a new user"),
    PASSWORD_RESET: ("system", "A one-time code to reset a password (always on)"),
    "new_customer": ("system", "Acknowledgement to a new customer (off by default)"),
}

DEFAULT_INTRO: Final = (
    "{% if messages | length == 1 %}There is a new message{% else %}There are "
    "{{ messages | length }} new messages{% endif %} in {{ conversation.subject }}"
    " you have not seen yet:"
)


def allowed_variables(*, kind: str, name: str = "") -> frozenset[str]:
    if kind not in VARIABLES:
        raise InputError(f"unknown template kind {quoted(kind)}; one of: {', '.join(KINDS)}")
    names = set(VARIABLES[kind])
    if kind == "system" and name != PASSWORD_RESET:
        names -= {"code", "expires_minutes"}
    return frozenset(names)


# --- sample data for previews -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Obj:
    """A read-only bag of attributes for template variables (the sandbox blocks the rest)."""

    fields: Mapping[str, object] = field(default_factory=dict)

    def __getattr__(self, name: str) -> object:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


def obj(**fields: object) -> _Obj:
    return _Obj(dict(fields))


def sample_variables(
    *, kind: str, name: str = "", workspace: str = "Deskbell"
) -> dict[str, object]:
    """The variables a preview renders with: believable, and none of them real (M4)."""
    work = obj(name=workspace, address="support@example.com")
    if kind == "system":
        values: dict[str, object] = {
            "person": obj(name="Dana Example", email="dana@example.com"),
            "workspace": work,
        }
        if name == PASSWORD_RESET:
            values.update(code="482913", expires_minutes=30)
        return values
    if kind == "notification":
        when = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
        message = obj(author="Ann Agent", time="2026-01-05 09:30 UTC", created_at=when, text="Hi!")
        return {
            "item": obj(number=12, title="Printer on fire", ref="[#12]"),
            "recipient": obj(name="Bob Agent"),
            "conversation": obj(kind="internal", subject="[#12] Printer on fire"),
            "messages": (message,),
            "context": (),
            INTRO_VARIABLE: "There is a new message in [#12] Printer on fire:",
        }
    return {
        "item": obj(number=12, title="Printer on fire", ref="[#12]", status="closed"),
        "recipient": obj(name="Carl Customer", email="carl@example.com"),
        "actor": obj(name="Ann Agent"),
        "event": obj(trigger="item_closed", old_status="open", new_status="closed"),
        "message": obj(author="Ann Agent", conversation="external", text="All fixed."),
        "workspace": work,
    }


# --- checking and rendering ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _part_names(name: str) -> tuple[str, str, str]:
    # The suffix decides autoescaping (HTML only) and lets errors point at the template line.
    return f"{name}.subject.j2", f"{name}.txt.j2", f"{name}.html.j2"


def _check_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not cleaned or len(cleaned) > 100 or not set(cleaned) <= _NAME_CHARS:
        raise InputError(
            f"{quoted(name)} is not a template name"
            " (lowercase letters, digits, '_' and '-', up to 100)"
        )
    return cleaned


def _uses(source: str, variable: str) -> bool:
    # Parsing only (nothing runs), so a plain environment is safe here.
    import jinja2  # loads when a template is first looked at (issue 9)
    from jinja2 import meta

    return variable in meta.find_undeclared_variables(jinja2.Environment().parse(source))


def validate_sources(*, name: str, kind: str, subject: str, body_text: str, body_html: str) -> None:
    """M4, M5: refuse a template that would not render, naming the part and the line."""
    allowed = allowed_variables(kind=kind, name=name)
    subject_name, text_name, html_name = _part_names(name)
    if kind != "notification":
        if not subject.strip():
            raise TemplateError(f"{subject_name}: the subject is empty")
        validate_template(subject, allowed=allowed, name=subject_name)
    if not body_text.strip():
        raise TemplateError(f"{text_name}: the plain-text body is empty")
    validate_template(body_text, allowed=allowed, name=text_name)
    if body_html.strip():
        validate_template(body_html, allowed=allowed, name=html_name)
    if name == PASSWORD_RESET:
        for part, source in ((text_name, body_text), (html_name, body_html)):
            if source.strip() and not _uses(source, "code"):
                raise TemplateError(
                    f"{part}: the password reset email must show the code ({{{{ code }}}})"
                )


def _render_one(source: str, name: str, variables: Mapping[str, object]) -> str:
    return render_source(source, variables, name=name)


def render_text(source: str, variables: Mapping[str, object], *, name: str = "text.j2") -> str:
    """One plain-text snippet (an automation's message) in the sandbox."""
    return _render_one(source, name, variables)


def render_template(
    *, name: str, subject: str, body_text: str, body_html: str, variables: Mapping[str, object]
) -> RenderedEmail:
    subject_name, text_name, html_name = _part_names(name)
    rendered_subject = _render_one(subject, subject_name, variables) if subject else ""
    text = _render_one(body_text, text_name, variables)
    html = _render_one(body_html, html_name, variables) if body_html.strip() else ""
    # E11: whatever a template produced, the subject is one clean header line.
    return RenderedEmail(
        subject=clean_header_text(rendered_subject, max_len=SUBJECT_MAX_CHARS), text=text, html=html
    )


def notification_overrides(*, intro: str, body_text: str, body_html: str) -> dict[str, str]:
    """Sources for services.templates.TemplateRenderer: the stored new-message template with
    the critical automation's text bound to `intro` (E5). The prefix has no line break, so
    error lines still match the stored template."""
    from services.templates import HTML_TEMPLATE, TEXT_TEMPLATE

    prefix = "{% set " + INTRO_VARIABLE + " %}" + intro + "{% endset %}"
    return {TEXT_TEMPLATE: prefix + body_text, HTML_TEMPLATE: prefix + body_html}


def validate_intro(text: str) -> str:
    """The critical automation's text: one line, a template over the notification variables."""
    cleaned = text.strip()
    if not cleaned:
        raise InputError("the text is empty")
    check_header_text(cleaned, field="the text")  # one line, no controls
    validate_template(cleaned, allowed=NOTIFICATION_VARIABLES, name="text")
    _render_one(cleaned, "text", sample_variables(kind="notification"))  # it must also finish
    return cleaned


def render_sample(
    *,
    name: str,
    kind: str,
    subject: str,
    body_text: str,
    body_html: str,
    intro: str | None = None,
    workspace: str = "Deskbell",
) -> RenderedEmail:
    """Check a template (M4) and render it with sample data: what a preview shows, and what a
    save must get through, so a template that breaks a limit is refused with its line."""
    validate_sources(
        name=name, kind=kind, subject=subject, body_text=body_text, body_html=body_html
    )
    variables = sample_variables(kind=kind, name=name, workspace=workspace)
    if kind == "notification":
        variables[INTRO_VARIABLE] = _render_one(intro or DEFAULT_INTRO, "intro.txt.j2", variables)
        subject = "{{ conversation.subject }}"
    return render_template(
        name=name, subject=subject, body_text=body_text, body_html=body_html, variables=variables
    )


# --- seeding ------------------------------------------------------------------------------


def _resource(name: str) -> str:
    return importlib.resources.files("resources").joinpath("templates", name).read_text("utf-8")


_TEXT_INTRO_BLOCK = """{% if messages | length == 1 -%}
There is a new message you have not seen yet:
{%- else -%}
There are {{ messages | length }} new messages you have not seen yet:
{%- endif %}"""
_HTML_INTRO_BLOCK = """<p style="margin:0 0 12px 0;">Hello {{ recipient.name }},
{%- if messages | length == 1 %} there is a new message you have not seen yet.
{%- else %} there are {{ messages | length }} new messages you have not seen yet.{% endif %}</p>"""


def _builtin_sources(name: str) -> tuple[str, str, str]:
    if name == NEW_MESSAGE:
        # The shipped notification files, with their intro handed to the critical automation.
        text = _resource("new_message.txt.j2").replace(_TEXT_INTRO_BLOCK, "{{ intro }}")
        html = _resource("new_message.html.j2").replace(
            _HTML_INTRO_BLOCK,
            '<p style="margin:0 0 12px 0;">Hello {{ recipient.name }},</p>\n'
            '<p style="margin:0 0 12px 0;">{{ intro }}</p>',
        )
        return "", text, html
    subject, text, html = _part_names(name)
    return _resource(subject).strip(), _resource(text), _resource(html)


def seed_templates(tx: Tx, *, now: datetime) -> None:
    """Insert the built-in templates that are missing; never overwrite an edited one."""
    session = tx.session
    have = set(session.scalars(select(EmailTemplate.name)))
    for name, (kind, description) in BUILTIN_TEMPLATES.items():
        if name in have:
            continue
        subject, text, html = _builtin_sources(name)
        session.add(
            EmailTemplate(
                name=name,
                kind=kind,
                description=description,
                subject=subject,
                body_text=text,
                body_html=html,
                builtin=True,
                updated_at=now,
            )
        )


# --- queueing ------------------------------------------------------------------------------


def _mime(
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
    if rendered is None or suppress_reason is not None:
        email.status = EmailStatus.SUPPRESSED if suppress_reason else EmailStatus.FAILED
        email.reason = (suppress_reason or failure or "nothing to send")[:500]
        email.next_attempt_at = None
    else:
        raw, message_id = _mime(
            rendered=rendered, identity=identity, to_name=to_name, to_addr=address, uid=uid, now=now
        )
        email.body_text = rendered.text
        email.message_id = message_id
        email.raw = raw
    tx.session.add(email)
    tx.session.flush()
    record_change(tx, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id)
    return email


# --- the sub-API the service exposes -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    name: str
    kind: str
    description: str
    subject: str
    body_text: str
    body_html: str
    builtin: bool
    updated_at: datetime
    used_by: tuple[str, ...] = ()  # the automations that send it (M4)
    variables: tuple[tuple[str, str], ...] = ()  # (name, what it holds)


def _info(row: EmailTemplate, used_by: tuple[str, ...] = ()) -> TemplateInfo:
    allowed = allowed_variables(kind=row.kind, name=row.name)
    shipped = BUILTIN_TEMPLATES.get(row.name) if row.builtin else None
    return TemplateInfo(
        name=row.name,
        kind=row.kind,
        # A built-in's description is the shipped one: a newer version's wording shows.
        description=shipped[1] if shipped else row.description,
        subject=row.subject,
        body_text=row.body_text,
        body_html=row.body_html,
        builtin=row.builtin,
        updated_at=row.updated_at,
        used_by=used_by,
        variables=tuple((k, v) for k, v in VARIABLES[row.kind].items() if k in allowed),
    )


def _row(tx: Tx, name: str) -> EmailTemplate:
    row = tx.session.get(EmailTemplate, name.strip().lower())
    if row is None:
        raise NotFoundError(f"no template {quoted(name)}")
    return row


def _senders(tx: Tx) -> dict[str, list[str]]:
    senders: dict[str, list[str]] = {}
    for auto in tx.session.scalars(select(Automation).order_by(Automation.position)):
        for action in auto.actions:
            template = action.get("template") if isinstance(action, dict) else None
            if template:
                senders.setdefault(str(template), []).append(f"#{auto.id} {auto.name}")
        if auto.critical:
            senders.setdefault(NEW_MESSAGE, []).append(f"#{auto.id} {auto.name}")
    return senders


def _intro(tx: Tx) -> str | None:
    intro: str | None = tx.session.scalar(
        select(Automation.text).where(Automation.critical.is_(True))
    )
    return intro


def _list(tx: Tx) -> list[TemplateInfo]:
    rows = tx.session.scalars(
        select(EmailTemplate).order_by(EmailTemplate.kind, EmailTemplate.name)
    ).all()
    senders = _senders(tx)
    return [_info(r, tuple(senders.get(r.name, ()))) for r in rows]


def _get(tx: Tx, name: str) -> TemplateInfo:
    row = _row(tx, name)
    return _info(row, tuple(_senders(tx).get(row.name, ())))


@dataclass(frozen=True, slots=True)
class _Editing:
    """What a save starts from: the stored template (if any) and the notification intro."""

    found: TemplateInfo | None
    intro: str | None


def _editing(tx: Tx, key: str) -> _Editing:
    row = tx.session.get(EmailTemplate, key)
    return _Editing(found=_info(row) if row is not None else None, intro=_intro(tx))


def _save(
    tx: Tx,
    *,
    key: str,
    kind: str,
    subject: str,
    body_text: str,
    body_html: str,
    description: str | None,
    now: datetime,
) -> TemplateInfo:
    session = tx.session
    row = session.get(EmailTemplate, key)
    if row is None:
        row = EmailTemplate(name=key, kind=kind, description="", builtin=False, updated_at=now)
        session.add(row)
    row.subject = subject
    row.body_text = body_text
    row.body_html = body_html
    if description is not None:
        row.description = check_header_text(description.strip(), field="description")[:300]
    row.updated_at = now
    record_change(tx, kind=ChangeKind.TEMPLATE, at=now)
    return _info(row)


def _delete(tx: Tx, name: str, *, now: datetime) -> None:
    row = _row(tx, name)
    if row.builtin:
        raise PermissionDeniedError(f"{row.name} is a built-in template; edit it instead")
    senders = _senders(tx).get(row.name)
    if senders:
        raise InputError(f"{row.name} is sent by: {', '.join(senders)}; change those first")
    tx.session.delete(row)
    record_change(tx, kind=ChangeKind.TEMPLATE, at=now)


@dataclass(frozen=True, slots=True)
class _Previewed:
    info: TemplateInfo
    intro: str | None


def _for_preview(tx: Tx, name: str) -> _Previewed:
    row = _row(tx, name)
    return _Previewed(info=_info(row), intro=_intro(tx) if row.kind == "notification" else None)


def _queue_test(
    tx: Tx, *, rendered: RenderedEmail, name: str, to: str, identity: MailIdentity, now: datetime
) -> int:
    email = queue_rendered_email(
        tx,
        rendered=rendered,
        template_name=name,
        to_addr=to,
        to_name="",
        identity=identity,
        now=now,
        kind="test",
    )
    return email.id


def notification_sources(tx: Tx) -> tuple[str | None, str, str] | None:
    """The stored new-message template (intro, plain text, HTML), or None (E5)."""
    template = tx.session.get(EmailTemplate, NEW_MESSAGE)
    if template is None:
        return None
    return _intro(tx), template.body_text, template.body_html


class TemplateStore:
    """`service.templates`: list, show, save, delete, preview and test-send (M4, M8)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        identity: Callable[[], MailIdentity],
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self._db = db
        self._clock = clock
        self._identity = identity
        self._on_change = on_change

    async def list(self) -> builtins.list[TemplateInfo]:
        return await self._db.read(_list)

    async def get(self, name: str) -> TemplateInfo:
        return await self._db.read(_get, name)

    async def save(
        self,
        *,
        name: str,
        subject: str | None = None,
        body_text: str | None = None,
        body_html: str | None = None,
        kind: str = "automation",
        description: str | None = None,
    ) -> TemplateInfo:
        """Create or edit a template; refused with the line if it would not render (M4).

        The check renders it with sample data, in a worker thread and outside the write
        transaction: a template that breaks a limit costs its own time only.
        """
        key = _check_name(name)
        editing = await self._db.read(_editing, key)
        found = editing.found
        if found is None:
            if kind == "notification":
                raise PermissionDeniedError("there is only one notification template")
            allowed_variables(kind=kind)
        wanted_kind = found.kind if found is not None else kind
        wanted_subject = subject if subject is not None else (found.subject if found else "")
        wanted_text = body_text if body_text is not None else (found.body_text if found else "")
        wanted_html = body_html if body_html is not None else (found.body_html if found else "")
        await asyncio.to_thread(
            render_sample,
            name=key,
            kind=wanted_kind,
            subject=wanted_subject,
            body_text=wanted_text,
            body_html=wanted_html,
            intro=editing.intro,
            workspace=self._identity().from_name,
        )
        info = await self._db.write(
            _save,
            key=key,
            kind=wanted_kind,
            subject=wanted_subject,
            body_text=wanted_text,
            body_html=wanted_html,
            description=description,
            now=self._clock.now(),
        )
        await self._on_change()
        return info

    async def delete(self, name: str) -> None:
        await self._db.write(_delete, name, now=self._clock.now())
        await self._on_change()

    async def preview(
        self,
        name: str,
        *,
        subject: str | None = None,
        body_text: str | None = None,
        body_html: str | None = None,
        intro: str | None = None,
    ) -> RenderedEmail:
        """Render with sample data; unsaved edits can be given to see them before saving."""
        found = await self._db.read(_for_preview, name)
        row = found.info
        return await asyncio.to_thread(
            render_sample,
            name=row.name,
            kind=row.kind,
            subject=row.subject if subject is None else subject,
            body_text=row.body_text if body_text is None else body_text,
            body_html=row.body_html if body_html is None else body_html,
            intro=intro if intro is not None else found.intro,
            workspace=self._identity().from_name,
        )

    async def test_send(self, name: str, *, to: str) -> int:
        """Queue the template with sample data to `to`; returns the log entry's id."""
        address = normalize_address(to)
        rendered = await self.preview(name)
        test = RenderedEmail(
            subject=clean_header_text("[test] " + rendered.subject, max_len=SUBJECT_MAX_CHARS),
            text=rendered.text,
            html=rendered.html,
        )
        return await self._db.write(
            _queue_test,
            rendered=test,
            name=name.strip().lower(),
            to=address,
            identity=self._identity(),
            now=self._clock.now(),
        )


class StoredNotificationRenderer(TemplateRenderer):
    """The notification renderer over the stored template; if that fails at send time the
    shipped default renders instead, so a bad edit never stalls the fallback (E1) and the
    failure is logged. A template that broke a limit (time, size) would break it again for
    every email: after the first time only the default renders, until the template changes."""

    def __init__(self, *, overrides: Mapping[str, str]) -> None:
        super().__init__(overrides=overrides)
        self._default = TemplateRenderer()
        self._over_limit = False

    def render_notification(
        self, email: NotificationEmail, *, tz: tzinfo | None = None
    ) -> tuple[str, str]:
        if self._over_limit:
            return self._default.render_notification(email, tz=tz)
        try:
            return super().render_notification(email, tz=tz)
        except TemplateError as exc:
            log.error("the stored new-message template failed (%s); used the default", exc)
            self._over_limit = exc.over_limit
            return self._default.render_notification(email, tz=tz)


def notification_renderer(*, intro: str | None, body_text: str, body_html: str) -> TemplateRenderer:
    """The renderer the fallback scheduler uses; the default one if the stored one is broken."""
    try:
        return StoredNotificationRenderer(
            overrides=notification_overrides(
                intro=intro or DEFAULT_INTRO, body_text=body_text, body_html=body_html
            )
        )
    except TemplateError as exc:
        log.error("the stored new-message template is invalid (%s); using the default", exc)
        return TemplateRenderer()
