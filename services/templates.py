"""Email bodies from Jinja2 templates, rendered in a sandbox (E4, E5, M4).

The notification templates (`resources/templates/new_message.txt.j2` and
`new_message.html.j2`, or overrides passed to `TemplateRenderer`) see exactly these
variables, all read-only:

- `item`: `number` (int or none: a direct conversation has no item), `title`, `ref`
  (`"[#12]"` or `""`).
- `recipient`: `name`.
- `conversation`: `kind` (`"internal"`, `"external"` or `"direct"`), `subject` (the email's).
- `messages`: the new messages, oldest first; each has `author`, `time` (a formatted string),
  `created_at` (a datetime) and `text` (plain text).
- `context`: up to three earlier messages, the same shape, oldest first.
- `chat_url`: for a customer, a link that opens this conversation in the customer chat
  (signed, expiring, single-use); `""` for users or when the chat is off.

R2: these come only from the `NotificationEmail` plan, which holds only what the recipient
may see. Message text is plain text: the HTML template autoescapes everything, so text is
never interpreted as HTML.

Templates run in an immutable sandbox with `StrictUndefined` (an unknown name fails instead
of rendering empty). Admin-edited templates are bounded: names and attributes starting with
`_` are refused, nothing is folded at compile time, every operation that can grow a value
checks its size first, loops and calls share a step and CPU-time budget
(`services.template_limits`), and output stops at `MAX_OUTPUT_CHARS`.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Final

from services.domain.email_plan import MessageView, NotificationEmail
from services.errors import InputError

if TYPE_CHECKING:
    from services.template_sandbox import Sandbox

# Jinja2 and the sandbox (`services.template_sandbox`) load when a template is first checked
# or rendered: a start that sends no email never pays for them (issue 9).

__all__ = [
    "HTML_TEMPLATE",
    "MAX_OUTPUT_CHARS",
    "NOTIFICATION_VARIABLES",
    "TEXT_TEMPLATE",
    "ConversationVars",
    "ItemVars",
    "MessageVars",
    "RecipientVars",
    "TemplateError",
    "TemplateRenderer",
    "notification_variables",
    "render_source",
    "validate_template",
]

TEXT_TEMPLATE: Final = "new_message.txt.j2"
HTML_TEMPLATE: Final = "new_message.html.j2"
NOTIFICATION_VARIABLES: Final = frozenset(
    {"item", "recipient", "messages", "context", "conversation", "chat_url"}
)
MAX_OUTPUT_CHARS: Final = 1_000_000
MAX_SOURCE_CHARS: Final = 100_000


class TemplateError(InputError):
    """A template that cannot be saved or rendered; `lineno` points at the line if known;
    `over_limit` when it broke one of `services.template_limits` (it would again)."""

    def __init__(
        self, message: str, *, lineno: int | None = None, over_limit: bool = False
    ) -> None:
        super().__init__(message)
        self.lineno = lineno
        self.over_limit = over_limit


# --- template variables ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemVars:
    number: int | None
    title: str
    ref: str


@dataclass(frozen=True, slots=True)
class RecipientVars:
    name: str


@dataclass(frozen=True, slots=True)
class ConversationVars:
    kind: str
    subject: str


@dataclass(frozen=True, slots=True)
class MessageVars:
    author: str
    time: str
    created_at: datetime
    text: str


def _format_time(moment: datetime, tz: tzinfo | None) -> str:
    # Digits only: strftime's day and month names follow the process locale, which Qt changes.
    local = moment.astimezone(tz) if tz is not None and moment.tzinfo is not None else moment
    zone = local.tzname() or ""
    return f"{local:%Y-%m-%d %H:%M} {zone}".rstrip()


def _message_vars(m: MessageView, tz: tzinfo | None) -> MessageVars:
    return MessageVars(
        author=m.author_name,
        time=_format_time(m.created_at, tz),
        created_at=m.created_at,
        text=m.text,
    )


def notification_variables(
    email: NotificationEmail, *, tz: tzinfo | None = None
) -> dict[str, object]:
    """The variables a notification template sees (see the module docstring)."""
    number = email.item_number
    return {
        "item": ItemVars(
            number=number, title=email.item_title, ref=f"[#{number}]" if number is not None else ""
        ),
        "recipient": RecipientVars(name=email.recipient_name),
        "conversation": ConversationVars(kind=str(email.conversation_kind), subject=email.subject),
        "messages": tuple(_message_vars(m, tz) for m in email.new_messages),
        "context": tuple(_message_vars(m, tz) for m in email.context_messages),
        "chat_url": email.chat_url,
    }


# --- public API --------------------------------------------------------------------------


def validate_template(
    source: str, *, allowed: set[str] | frozenset[str], name: str = "template"
) -> None:
    """M4: refuse a template with a syntax error, an unknown filter, a private name, or a
    variable outside `allowed`; the error names the line."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"{name}: the template is longer than {MAX_SOURCE_CHARS} characters")
    from services.template_sandbox import check_template

    check_template(source, allowed=allowed, name=name)


def _default_source(name: str) -> str:
    return importlib.resources.files("resources").joinpath("templates", name).read_text("utf-8")


class TemplateRenderer:
    """Renders notification emails from the default templates or from overrides.

    `overrides` maps a template name (`TEXT_TEMPLATE`, `HTML_TEMPLATE`) to its source; each
    is validated at construction, so a bad template fails early with its line.
    """

    def __init__(
        self,
        *,
        overrides: Mapping[str, str] | None = None,
        max_output_chars: int = MAX_OUTPUT_CHARS,
        max_steps: int | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        unknown = set(overrides) - {TEXT_TEMPLATE, HTML_TEMPLATE}
        if unknown:
            raise TemplateError(f"no such template: {', '.join(sorted(unknown))}")
        for name, source in overrides.items():
            validate_template(source, allowed=NOTIFICATION_VARIABLES, name=name)
        sources = {
            name: overrides.get(name) or _default_source(name)
            for name in (TEXT_TEMPLATE, HTML_TEMPLATE)
        }
        self._sources = sources
        self._env: Sandbox | None = None  # Jinja2's, built at the first render
        self._max_output = max_output_chars
        self._max_steps = max_steps

    def render_notification(
        self, email: NotificationEmail, *, tz: tzinfo | None = None
    ) -> tuple[str, str]:
        """(plain text, HTML) for one notification email; times shown in `tz` (else as stored)."""
        variables = notification_variables(email, tz=tz)
        return self.render(TEXT_TEMPLATE, variables), self.render(HTML_TEMPLATE, variables)

    def render(self, name: str, variables: Mapping[str, object]) -> str:
        """Render one template with a fresh step budget and the output cap."""
        from services.template_sandbox import environment, render_bounded

        if self._env is None:
            self._env = environment(self._sources)
        return render_bounded(
            self._env,
            name,
            variables,
            max_steps=self._max_steps,
            max_output=self._max_output,
        )


def render_source(
    source: str,
    variables: Mapping[str, object],
    *,
    name: str,
    max_steps: int | None = None,
    max_output: int = MAX_OUTPUT_CHARS,
) -> str:
    """Render one template source (an administrator's) in the same sandbox and limits
    (`max_steps` None: `services.template_limits.MAX_STEPS`)."""
    from services.template_sandbox import environment, render_bounded

    return render_bounded(
        environment({name: source}),
        name,
        variables,
        max_steps=max_steps,
        max_output=max_output,
    )
