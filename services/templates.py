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
import itertools
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import CodeType
from typing import Any, Final, Literal, overload

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.domain.email_plan import MessageView, NotificationEmail
from services.errors import InputError
from services.template_limits import (
    MAX_STEPS,
    Budget,
    bounded_binop,
    bounded_call,
    bounded_concat,
    bounded_filters,
    bounded_globals,
    loop_guard,
    using_budget,
)

__all__ = [
    "HTML_TEMPLATE",
    "MAX_OUTPUT_CHARS",
    "MAX_STEPS",
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
    {"item", "recipient", "messages", "context", "conversation"}
)
MAX_OUTPUT_CHARS: Final = 1_000_000
MAX_SOURCE_CHARS: Final = 100_000
_LOOP_GUARD: Final = "__deskbell_loop_guard"
_CONCAT_GUARD: Final = "__deskbell_concat"
_OUTPUT_BATCH: Final = 32
_TEMPLATE_FILE_RE: Final = re.compile(r"^<template>$|\.j2$")


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
    }


# --- the sandbox -------------------------------------------------------------------------


def _refuse_unsafe(tree: nodes.Template) -> None:
    """Refuse at compile time what the sandbox would only catch at render time, and what it
    allows but we do not: names and attributes starting with `_` (internals), and switching
    autoescaping off (message text must never become HTML)."""
    for modifier in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        error = SecurityError("turning autoescaping off is not allowed")
        error.lineno = modifier.lineno  # type: ignore[attr-defined]
        raise error
    for node in tree.find_all((nodes.Name, nodes.Getattr)):
        if isinstance(node, nodes.Name):
            name = node.name
        elif isinstance(node, nodes.Getattr):
            name = node.attr
        else:
            continue
        if name.startswith("_"):
            error = SecurityError(f"names starting with '_' are not allowed ({name!r})")
            error.lineno = node.lineno  # type: ignore[attr-defined]
            raise error


def _guard_loops(tree: nodes.Template, environment: jinja2.Environment) -> None:
    """Route every `for` loop's iterable through the step budget, and every `~` through the
    size check (Jinja joins those with a function the sandbox cannot intercept)."""
    for loop in list(tree.find_all(nodes.For)):
        guard = nodes.Name(_LOOP_GUARD, "load", lineno=loop.lineno)
        call = nodes.Call(guard, [loop.iter], [], None, None, lineno=loop.lineno)
        call.set_environment(environment)
        loop.iter = call
    for concat in list(tree.find_all(nodes.Concat)):
        guard = nodes.Name(_CONCAT_GUARD, "load", lineno=concat.lineno)
        call = nodes.Call(guard, list(concat.nodes), [], None, None, lineno=concat.lineno)
        call.set_environment(environment)
        _replace_node(tree, concat, call)


def _replace_node(tree: nodes.Node, old: nodes.Node, new: nodes.Node) -> None:
    for parent in tree.find_all(nodes.Node):
        for field, value in parent.iter_fields():
            if value is old:
                setattr(parent, field, new)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new


class _Sandbox(ImmutableSandboxedEnvironment):
    # Intercepted operators are never folded at compile time and are checked when they run.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    @overload
    def compile(
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: Literal[False] = False,
        defer_init: bool = False,
    ) -> CodeType: ...

    @overload
    def compile(
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: Literal[True] = ...,
        defer_init: bool = False,
    ) -> str: ...

    def compile(
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> str | CodeType:
        if isinstance(source, str):
            source = self.parse(source, name, filename)
        _refuse_unsafe(source)
        _guard_loops(source, self)
        return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload, no-any-return]

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # Positional-only: a template's own keyword arguments may be named anything.
        bounded_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        bounded_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)


def _is_html(name: str | None) -> bool:
    return name is not None and (name.endswith(".html.j2") or name.endswith(".html"))


def _environment(sources: Mapping[str, str]) -> _Sandbox:
    env = _Sandbox(
        loader=jinja2.DictLoader(dict(sources)),
        undefined=jinja2.StrictUndefined,
        autoescape=_is_html,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    # `safe` would let message text through as HTML; there is no legitimate use for it here.
    del env.filters["safe"]
    env.filters = bounded_filters(env.filters)
    env.globals.update(bounded_globals())
    env.globals[_LOOP_GUARD] = loop_guard
    env.globals[_CONCAT_GUARD] = bounded_concat
    return env


def _lineno(exc: BaseException) -> int | None:
    """The template line an error came from (Jinja rewrites tracebacks to template lines)."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    found: int | None = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if _TEMPLATE_FILE_RE.search(frame.filename) and frame.lineno is not None:
            found = frame.lineno
    return found


def _template_error(exc: BaseException, *, where: str) -> TemplateError:
    lineno = _lineno(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    at = f" line {lineno}" if lineno is not None else ""
    over = isinstance(exc, SecurityError | RecursionError)
    return TemplateError(f"{where}{at}: {message}", lineno=lineno, over_limit=over)


# --- public API --------------------------------------------------------------------------


def validate_template(
    source: str, *, allowed: set[str] | frozenset[str], name: str = "template"
) -> None:
    """M4: refuse a template with a syntax error, an unknown filter, a private name, or a
    variable outside `allowed`; the error names the line."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"{name}: the template is longer than {MAX_SOURCE_CHARS} characters")
    env = _environment({})
    try:
        tree = env.parse(source)
        env.compile(source)
    except (jinja2.TemplateError, RecursionError, ValueError, OverflowError) as exc:
        # ValueError: a literal number of 5,000 digits, which Python will not read.
        raise _template_error(exc, where=name) from exc
    unknown = meta.find_undeclared_variables(tree) - set(allowed)
    if unknown:
        first = min(
            (n for n in tree.find_all(nodes.Name) if n.name in unknown), key=lambda n: n.lineno
        )
        names = ", ".join(sorted(unknown))
        raise TemplateError(
            f"{name} line {first.lineno}: unknown variable {first.name!r}"
            f" (unknown: {names}; allowed: {', '.join(sorted(allowed))})",
            lineno=first.lineno,
        )


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
        max_steps: int = MAX_STEPS,
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
        self._env = _environment(sources)
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
        return _render_bounded(
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
    max_steps: int = MAX_STEPS,
    max_output: int = MAX_OUTPUT_CHARS,
) -> str:
    """Render one template source (an administrator's) in the same sandbox and limits."""
    return _render_bounded(
        _environment({name: source}),
        name,
        variables,
        max_steps=max_steps,
        max_output=max_output,
    )


def _render_bounded(
    env: _Sandbox,
    name: str,
    variables: Mapping[str, object],
    *,
    max_steps: int,
    max_output: int,
) -> str:
    end_budget = using_budget(Budget(steps=max_steps))
    try:
        return _join_bounded(env, name, variables, max_output=max_output)
    except TemplateError:
        raise
    except Exception as exc:  # whatever a template does wrong is that template's error
        raise _template_error(exc, where=name) from exc
    finally:
        end_budget()


def _join_bounded(
    env: _Sandbox, name: str, variables: Mapping[str, object], *, max_output: int
) -> str:
    """The output, stopped once it passes `max_output` characters. Counted per batch of
    chunks (each chunk is one bounded value), which costs a fraction of counting each."""
    template = env.get_template(name)
    chunks = template.root_render_func(template.new_context(dict(variables)))
    parts: list[str] = []
    size = 0
    try:
        while batch := list(itertools.islice(chunks, _OUTPUT_BATCH)):
            size += sum(map(len, batch))
            if size > max_output:
                raise TemplateError(
                    f"{name}: output is larger than {max_output} characters", over_limit=True
                )
            parts += batch
    except TemplateError:
        raise
    except Exception:
        env.handle_exception()  # re-raised with the template's own line numbers
    return "".join(parts)
