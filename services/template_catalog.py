"""The email templates Deskbell knows: what each kind may use, the built-in ones, and how a
stored template is checked and rendered (M4, M5).

Every template has a subject, a plain-text body and an HTML body, all Jinja2 run in the same
sandbox as the notification emails (`services.templates`). What a template may use depends
on its kind, and is documented by `VARIABLES` (shown in the editor and by `deskbell template
show`). A template is checked at save time: a syntax error, an unknown variable or a private
name is refused with the part and the line (M4). The built-in templates' sources live in
`resources/templates`.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Final

from services.domain.email_plan import SUBJECT_MAX_CHARS, NotificationEmail
from services.domain.headers import (
    check_header_text,
    clean_header_text,
)
from services.errors import InputError, quoted

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

__all__ = [
    "BUILTIN_TEMPLATES",
    "CODE_TEMPLATES",
    "DEFAULT_INTRO",
    "INTRO_VARIABLE",
    "KINDS",
    "NEW_MESSAGE",
    "PASSWORD_RESET",
    "VARIABLES",
    "RenderedEmail",
    "StoredNotificationRenderer",
    "allowed_variables",
    "builtin_sources",
    "check_name",
    "notification_overrides",
    "notification_renderer",
    "obj",
    "render_sample",
    "render_template",
    "render_text",
    "sample_variables",
    "validate_intro",
    "validate_sources",
]

log = logging.getLogger(__name__)

KINDS: Final = ("automation", "system", "notification")
INTRO_VARIABLE: Final = "intro"
NEW_MESSAGE: Final = "new_message"
PASSWORD_RESET: Final = "password_reset"
# System emails that carry a one-time code that sets a password (M5, T4).
CODE_TEMPLATES: Final = frozenset({PASSWORD_RESET, "welcome"})
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
        "chat_url": "for a customer, a link into the chat for the item's conversation "
        "('' otherwise)",
    },
    "system": {
        "person": "the new user, customer, or who asked for the reset: name, email",
        "workspace": "name (the From name of emails), address",
        "code": "password reset and welcome: the one-time code that sets a password "
        "(required in the reset)",
        "expires_minutes": "password reset and welcome: how long the code works",
    },
    "notification": {
        "item": "number (none in a direct conversation), title, ref ('[#12]' or '')",
        "recipient": "name",
        "conversation": "kind ('internal', 'external', 'direct'), subject",
        "messages": "the new messages, oldest first: author, time, created_at, text",
        "context": "up to three earlier messages, same shape",
        "chat_url": "a customer's link into the chat for this conversation ('' otherwise)",
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
    if kind == "system" and name not in CODE_TEMPLATES:
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
        if name in CODE_TEMPLATES:
            values.update(code="482913", expires_minutes=30 if name == PASSWORD_RESET else 10080)
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
            "chat_url": "",
            INTRO_VARIABLE: "There is a new message in [#12] Printer on fire:",
        }
    return {
        "item": obj(number=12, title="Printer on fire", ref="[#12]", status="closed"),
        "recipient": obj(name="Carl Customer", email="carl@example.com"),
        "actor": obj(name="Ann Agent"),
        "event": obj(trigger="item_closed", old_status="open", new_status="closed"),
        "message": obj(author="Ann Agent", conversation="external", text="All fixed."),
        "workspace": work,
        "chat_url": "",
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


def check_name(name: str) -> str:
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


def builtin_sources(name: str) -> tuple[str, str, str]:
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
