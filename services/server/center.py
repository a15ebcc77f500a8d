"""The Messaging Center over HTTP (M1-M8): settings, the mail servers, automations,
templates, system emails, the email log, bounces, and handing in one raw email. Every call is
an administrator's except reading the settings, which the desktop shows every user
(read-only for an agent)."""

from __future__ import annotations

from dataclasses import dataclass

from services.automations import AutomationInfo
from services.email_log import EmailDetail
from services.errors import NotFoundError
from services.incoming.decide import IncomingResult
from services.server.auth import Access
from services.server.endpoints import Call, Endpoints, Id, Offset, Page
from services.system_emails import SystemEmailInfo
from services.template_catalog import RenderedEmail
from services.template_store import TemplateInfo
from services.views import BounceInfo, Changes, EmailLogEntry

__all__ = ["routes"]

api = Endpoints()
routes = api.routes
ADMIN = Access.ADMIN


@dataclass(frozen=True, slots=True)
class ValueForm:
    value: str


@dataclass(frozen=True, slots=True)
class ServerPasswordForm:
    password: str


@dataclass(frozen=True, slots=True)
class AutomationTextForm:
    text: str


@dataclass(frozen=True, slots=True)
class TemplateForm:
    """A new template, or the parts of one to change (the others stay)."""

    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    kind: str = "automation"
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PreviewForm:
    """Unsaved edits to see before saving; the saved template where left out."""

    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    intro: str | None = None


@dataclass(frozen=True, slots=True)
class TestForm:
    to: str


# --- settings and the mail servers -------------------------------------------------------------


@api("GET", "/settings", summary="The workspace's settings")
async def settings(call: Call) -> dict[str, str]:
    return call.service.known_settings()


@api("PUT", "/settings/{key}", summary="Change a setting", access=ADMIN)
async def set_setting(call: Call, key: str, body: ValueForm) -> Changes:
    return await call.service.set_config(key, body.value)


@api("PUT", "/smtp/password", summary="The SMTP password (kept in the keyring)", access=ADMIN)
async def set_smtp_password(call: Call, body: ServerPasswordForm) -> None:
    call.service.set_smtp_password(body.password)


@api("POST", "/smtp/test", summary="Connect and log in to the SMTP server", access=ADMIN)
async def test_smtp(call: Call) -> str:
    """The server's answer."""
    return await call.service.test_smtp()


@api("PUT", "/imap/password", summary="The mailbox password (kept in the keyring)", access=ADMIN)
async def set_imap_password(call: Call, body: ServerPasswordForm) -> None:
    call.service.set_imap_password(body.password)


@api("POST", "/imap/test", summary="Connect to the mailbox", access=ADMIN)
async def test_imap(call: Call) -> str:
    return await call.service.test_imap()


# --- automations (M1, M2) --------------------------------------------------------------------


@api("GET", "/automations", summary="Every automation", access=ADMIN)
async def automations(call: Call) -> list[AutomationInfo]:
    return await call.service.automations.list()


@api("GET", "/automations/{automation_id}", summary="One automation", access=ADMIN)
async def automation(call: Call, automation_id: Id) -> AutomationInfo:
    return await call.service.automations.get(automation_id)


@api("POST", "/automations/{automation_id}/enable", summary="Enable", access=ADMIN)
async def enable_automation(call: Call, automation_id: Id) -> AutomationInfo:
    return await call.service.automations.enable(automation_id)


@api("POST", "/automations/{automation_id}/disable", summary="Disable", access=ADMIN)
async def disable_automation(call: Call, automation_id: Id) -> AutomationInfo:
    """The critical automation cannot be disabled (M1)."""
    return await call.service.automations.disable(automation_id)


@api("DELETE", "/automations/{automation_id}", summary="Delete an automation", access=ADMIN)
async def delete_automation(call: Call, automation_id: Id) -> None:
    await call.service.automations.delete(automation_id)


@api("PUT", "/automations/{automation_id}/text", summary="An automation's text", access=ADMIN)
async def set_automation_text(
    call: Call, automation_id: Id, body: AutomationTextForm
) -> AutomationInfo:
    return await call.service.automations.set_text(automation_id, body.text)


# --- templates (M4) and system emails (M5) ---------------------------------------------------


@api("GET", "/templates", summary="Every email template", access=ADMIN)
async def templates(call: Call) -> list[TemplateInfo]:
    return await call.service.templates.list()


@api("GET", "/templates/{name}", summary="One email template", access=ADMIN)
async def template(call: Call, name: str) -> TemplateInfo:
    return await call.service.templates.get(name)


@api("PUT", "/templates/{name}", summary="Create or edit a template", access=ADMIN)
async def save_template(call: Call, name: str, body: TemplateForm) -> TemplateInfo:
    """Refused, with the line, if it would not render (M4)."""
    return await call.service.templates.save(
        name=name,
        subject=body.subject,
        body_text=body.body_text,
        body_html=body.body_html,
        kind=body.kind,
        description=body.description,
    )


@api("POST", "/templates/{name}/preview", summary="Render with sample data", access=ADMIN)
async def preview_template(call: Call, name: str, body: PreviewForm) -> RenderedEmail:
    return await call.service.templates.preview(
        name,
        subject=body.subject,
        body_text=body.body_text,
        body_html=body.body_html,
        intro=body.intro,
    )


@api("POST", "/templates/{name}/test", summary="Email a test", access=ADMIN, status=202)
async def test_template(call: Call, name: str, body: TestForm) -> int:
    """Queued with sample data; the answer is its entry in the email log."""
    return await call.service.templates.test_send(name, to=body.to)


@api("DELETE", "/templates/{name}", summary="Delete a template", access=ADMIN)
async def delete_template(call: Call, name: str) -> None:
    await call.service.templates.delete(name)


@api("GET", "/system-emails", summary="The system emails", access=ADMIN)
async def system_emails(call: Call) -> list[SystemEmailInfo]:
    return await call.service.system_emails.list()


@api("POST", "/system-emails/{name}/enable", summary="Enable a system email", access=ADMIN)
async def enable_system_email(call: Call, name: str) -> SystemEmailInfo:
    return await call.service.system_emails.enable(name)


@api("POST", "/system-emails/{name}/disable", summary="Disable a system email", access=ADMIN)
async def disable_system_email(call: Call, name: str) -> SystemEmailInfo:
    """The password reset email is always on (M5)."""
    return await call.service.system_emails.disable(name)


# --- Incoming & Outgoing (M6), bounces (E7), incoming mail (I1) -------------------------------


@api("GET", "/emails", summary="The last 72 hours of emails, newest first", access=ADMIN)
async def emails(
    call: Call,
    status: str | None = None,
    direction: str | None = None,
    search: str | None = None,
    limit: Page = 500,
    offset: Offset = 0,
) -> list[EmailLogEntry]:
    return await call.service.emails(
        status=status, direction=direction, search=search, limit=limit, offset=offset
    )


@api("GET", "/emails/{email_id}", summary="One email of the log in full", access=ADMIN)
async def email(call: Call, email_id: Id) -> EmailDetail:
    return await call.service.email_detail(email_id)


@api(
    "GET",
    "/emails/{email_id}/raw",
    summary="One email as it was sent or received",
    access=ADMIN,
    media="message/rfc822",
)
async def email_raw(call: Call, email_id: Id) -> bytes:
    raw = await call.service.email_raw(email_id)
    if raw is None:
        raise NotFoundError(f"no raw email for log entry {email_id}")
    return raw


@api("GET", "/bounces", summary="Addresses delivery reports spoke of", access=ADMIN)
async def bounces(call: Call, blocked_only: bool = False) -> list[BounceInfo]:
    return await call.service.bounced_addresses(blocked_only=blocked_only)


@api("DELETE", "/bounces/{address}", summary="Forget an address's bounces", access=ADMIN)
async def clear_bounces(call: Call, address: str) -> Changes:
    return await call.service.clear_bounces(address=address, acting=call.who.email)


@api(
    "POST",
    "/mail",
    summary="Hand in one raw incoming email",
    access=ADMIN,
    body_media="message/rfc822",
)
async def receive_mail(call: Call, body: bytes) -> IncomingResult:
    """Processed as if fetched from the mailbox: threaded, a new item, or ignored."""
    return await call.service.receive_mail(body)
