"""Email templates kept in the database: the Automated and System emails of M4 and M5.

The built-in templates are seeded from `resources/templates` on first start; they can be
edited but not deleted. What a template may use and how it renders is
`services.template_catalog`; queueing one for a recipient is `services.mail.compose`.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from services.clock import Clock
from services.domain.email_plan import SUBJECT_MAX_CHARS
from services.domain.headers import (
    check_header_text,
    clean_header_text,
    normalize_address,
)
from services.errors import InputError, NotFoundError, PermissionDeniedError, quoted
from services.mail.compose import queue_rendered_email
from services.mail.identity import MailIdentity
from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.models import Automation, EmailTemplate
from services.template_catalog import (
    BUILTIN_TEMPLATES,
    NEW_MESSAGE,
    VARIABLES,
    RenderedEmail,
    allowed_variables,
    builtin_sources,
    check_name,
    render_sample,
)
from services.views import ChangeKind

__all__ = [
    "TemplateInfo",
    "TemplateStore",
    "notification_sources",
    "seed_templates",
]

log = logging.getLogger(__name__)


def seed_templates(tx: Tx, *, now: datetime) -> None:
    """Insert the built-in templates that are missing; never overwrite an edited one."""
    session = tx.session
    have = set(session.scalars(select(EmailTemplate.name)))
    for name, (kind, description) in BUILTIN_TEMPLATES.items():
        if name in have:
            continue
        subject, text, html = builtin_sources(name)
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
        key = check_name(name)
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
