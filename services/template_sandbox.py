"""The Jinja2 side of `services.templates`: the sandbox, its checks and bounded rendering.

Imported when a template is first checked or rendered, not at start-up (issue 9): Jinja2 and
the limits cost a few tens of milliseconds and megabytes a process that shows its window
without sending an email never needs.
"""

from __future__ import annotations

import itertools
import re
import traceback
from collections.abc import Mapping
from types import CodeType
from typing import Any, Final, Literal, overload

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.template_limits import (
    Budget,
    bounded_binop,
    bounded_call,
    bounded_concat,
    bounded_filters,
    bounded_globals,
    loop_guard,
    using_budget,
)
from services.templates import TemplateError

__all__ = ["Sandbox", "check_template", "environment", "render_bounded", "template_error"]

_LOOP_GUARD: Final = "__deskbell_loop_guard"
_CONCAT_GUARD: Final = "__deskbell_concat"
_OUTPUT_BATCH: Final = 32
_TEMPLATE_FILE_RE: Final = re.compile(r"^<template>$|\.j2$")


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


class Sandbox(ImmutableSandboxedEnvironment):
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


def environment(sources: Mapping[str, str]) -> Sandbox:
    env = Sandbox(
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


def template_error(exc: BaseException, *, where: str) -> TemplateError:
    lineno = _lineno(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    at = f" line {lineno}" if lineno is not None else ""
    over = isinstance(exc, SecurityError | RecursionError)
    return TemplateError(f"{where}{at}: {message}", lineno=lineno, over_limit=over)


def check_template(source: str, *, allowed: set[str] | frozenset[str], name: str) -> None:
    """`services.templates.validate_template` past its size check."""
    env = environment({})
    try:
        tree = env.parse(source)
        env.compile(source)
    except (jinja2.TemplateError, RecursionError, ValueError, OverflowError) as exc:
        # ValueError: a literal number of 5,000 digits, which Python will not read.
        raise template_error(exc, where=name) from exc

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


def render_bounded(
    env: Sandbox,
    name: str,
    variables: Mapping[str, object],
    *,
    max_steps: int | None,
    max_output: int,
) -> str:
    """Render one template with a fresh step budget (`None`: the limits' own) and the
    output cap."""
    end_budget = using_budget(Budget() if max_steps is None else Budget(steps=max_steps))
    try:
        return _join_bounded(env, name, variables, max_output=max_output)
    except TemplateError:
        raise
    except Exception as exc:  # whatever a template does wrong is that template's error
        raise template_error(exc, where=name) from exc
    finally:
        end_budget()


def _join_bounded(
    env: Sandbox, name: str, variables: Mapping[str, object], *, max_output: int
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
