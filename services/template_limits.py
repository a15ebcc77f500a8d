"""What one template may cost (M4): compiling stays cheap and every render ends, small.

An administrator's template is code. Jinja2's sandbox stops it reaching Python's internals
but not exhausting the machine: the compiler folds constant expressions (`{{ 'a'|center(
400000000) }}` built a 400 MB string at every start), powers and repetition grow without end,
`lipsum(n=10**6)` writes half a gigabyte. So, on top of the sandbox:

- no operation is folded at compile time (filters take the context; `+`, `*`, `**`, `%` and
  `~` are intercepted), so compiling costs what the source costs;
- each operation that can grow a value checks the size of what it would make before making it
  (strings and lists up to `MAX_VALUE_CHARS`, integers up to `MAX_INT_BITS`, format widths);
- loops and calls share a step budget (`MAX_STEPS`), and a render may use `MAX_CPU_S` of its
  thread's CPU time (CPU, not wall-clock time: a busy machine does not make a template fail);
- `lipsum` and `range` are bounded versions; the output stops at the renderer's cap.

A template that breaks a limit fails to render with a `SecurityError` that says which one; the
caller turns that into a template error with the line.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final

from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import safe_range
from jinja2.utils import _PassArg, generate_lorem_ipsum, pass_context, pass_eval_context
from markupsafe import Markup

__all__ = [
    "MAX_CPU_S",
    "MAX_INT_BITS",
    "MAX_STEPS",
    "MAX_VALUE_CHARS",
    "Budget",
    "bounded_binop",
    "bounded_call",
    "bounded_concat",
    "bounded_filters",
    "bounded_globals",
    "loop_guard",
    "spend",
    "using_budget",
]

MAX_VALUE_CHARS: Final = 1_000_000  # a string, or a list's items, made by one operation
MAX_INT_BITS: Final = 16_384  # about 4,900 digits: more than Python will print anyway
MAX_STEPS: Final = 100_000  # loop iterations plus calls, per render
MAX_CPU_S: Final = 2.0  # of the rendering thread's CPU time, per render
_MAX_WIDTH: Final = 10_000  # a field width or precision in a format string
_MAX_LIPSUM_PARAGRAPHS: Final = 20
_MAX_LIPSUM_WORDS: Final = 200
_CLOCK_EVERY: Final = 64  # steps between two looks at the CPU clock


class Budget:
    """One render's steps and CPU time."""

    def __init__(self, *, steps: int = MAX_STEPS, cpu_s: float = MAX_CPU_S) -> None:
        self._left = steps
        self._cpu_deadline = time.thread_time() + cpu_s
        self._cpu_s = cpu_s

    def spend(self) -> None:
        self._left -= 1
        if self._left < 0:
            raise SecurityError("the template ran too long (too many loop steps or calls)")
        if self._left % _CLOCK_EVERY == 0 and time.thread_time() > self._cpu_deadline:
            raise SecurityError(f"the template ran too long (over {self._cpu_s:g} s of CPU)")


# Per render, not per environment: one renderer may serve several threads or tasks.
_BUDGET: ContextVar[Budget | None] = ContextVar("deskbell_template_budget", default=None)


def using_budget(budget: Budget) -> Callable[[], None]:
    """Make `budget` the current render's; returns the function that ends it."""
    token = _BUDGET.set(budget)
    return lambda: _BUDGET.reset(token)


def spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


def loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `for` loop's iterable goes through this (the sandbox rewrites the loops)."""
    for value in iterable:
        spend()
        yield value


# --- sizes -----------------------------------------------------------------------------------


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} would make a value too large")


def _size(value: Any) -> int:
    """Characters of a string, items of a collection (plus their strings' characters)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(len(v) for v in value if isinstance(v, str | bytes))
    return 0


def _check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _too_big(what)


def _check_size(chars: int, what: str) -> None:
    if chars > MAX_VALUE_CHARS:
        raise _too_big(what)


_PRINTF_FIELD: Final = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_FIELD_SPEC: Final = re.compile(r"\{[^{}]*:([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")


def _check_printf(fmt: str) -> None:
    for width, precision in _PRINTF_FIELD.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > _MAX_WIDTH):
                raise SecurityError(f"format widths above {_MAX_WIDTH} are not allowed")


def _check_format(fmt: str) -> None:
    for spec in _FORMAT_FIELD_SPEC.findall(fmt):
        if "{" in spec or any(int(n) > _MAX_WIDTH for n in re.findall(r"\d+", spec)):
            raise SecurityError(f"format widths above {_MAX_WIDTH} are not allowed")


def bounded_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `left <operator> right` before it is computed if its result would be too big."""
    spend()
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(count, int) and isinstance(seq, str | bytes | list | tuple):
                _check_size(_size(seq) * max(count, 0), "repetition")
        both_ints = isinstance(left, int) and isinstance(right, int)
        if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _too_big("multiplication")
    elif operator == "**" and isinstance(right, int | float):
        whole = isinstance(left, int) and isinstance(right, int) and right > 0
        if abs(right) > MAX_INT_BITS or (whole and abs(left).bit_length() * right > MAX_INT_BITS):
            raise _too_big("the power")
    elif operator == "+":
        if isinstance(left, str | bytes | list | tuple) and type(left) is type(right):
            _check_size(_size(left) + _size(right), "concatenation")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left)


@pass_eval_context
def bounded_concat(eval_ctx: Any, *parts: Any) -> str:
    """`a ~ b`: the sandbox rewrites every concatenation into a call of this."""
    spend()
    strings = [p if isinstance(p, str) else str(p) for p in parts]
    _check_size(sum(len(s) for s in strings), "concatenation")
    joined: str = (markup_join if eval_ctx.autoescape else str_join)(
        p if isinstance(p, Markup) else s for p, s in zip(parts, strings, strict=True)
    )
    return joined


def _estimate_str_method(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """A method of a string that can grow it: check the size of its result beforehand."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format in a function
    name = getattr(target, "__name__", "")
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str):
        return
    values = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_size(max([len(owner), *(v for v in values if isinstance(v, int))]), name)
    elif name == "expandtabs":
        size = next((v for v in values if isinstance(v, int)), 8)
        _check_size(len(owner) + owner.count("\t") * max(size, 0), name)
    elif name == "replace":
        _check_replace(owner, args, kwargs)
    elif name == "join":
        items = list(args[0]) if args else []
        _check_size(sum(len(str(i)) for i in items) + len(owner) * len(items), name)
    elif name in ("format", "format_map"):
        _check_format(owner)


def _check_replace(text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    old = str(args[0]) if args else str(kwargs.get("old", ""))
    new = str(args[1]) if len(args) > 1 else str(kwargs.get("new", ""))
    count = args[2] if len(args) > 2 else kwargs.get("count", -1)
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    _check_size(len(text) + times * max(len(new) - len(old), 0), "replace")


def bounded_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Before the sandbox calls `obj`: spend a step and refuse a call that would grow too much."""
    spend()
    _estimate_str_method(obj, args, kwargs)


def _check_result(result: Any, what: str) -> Any:
    _check_int(result, what)
    if isinstance(result, str | bytes | list | tuple):
        _check_size(_size(result), what)
    return result


# --- filters and globals ---------------------------------------------------------------------


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], at: int, name: str, default: Any) -> Any:
    return args[at] if len(args) > at else kwargs.get(name, default)


def _grows_center(a: tuple[Any, ...], k: Mapping[str, Any]) -> None:
    _check_size(max(_size(a[0]), int(_arg(a, k, 1, "width", 80))), "center")


def _grows_indent(a: tuple[Any, ...], k: Mapping[str, Any]) -> None:
    width = _arg(a, k, 1, "width", 4)
    pad = len(width) if isinstance(width, str) else int(width)
    _check_size(_size(a[0]) + (str(a[0]).count("\n") + 1) * max(pad, 0), "indent")


def _grows_wordwrap(a: tuple[Any, ...], k: Mapping[str, Any]) -> None:
    text = str(a[0])
    width = max(int(_arg(a, k, 1, "width", 79)), 1)
    wrap = str(_arg(a, k, 4, "wrapstring", None) or "\n")
    lines = len(text) // width + text.count("\n") + 1
    _check_size(len(text) + lines * len(wrap), "wordwrap")


def _grows_join(a: tuple[Any, ...], k: Mapping[str, Any]) -> None:
    if isinstance(a[0], list | tuple):
        glue = len(str(_arg(a, k, 1, "d", "")))
        _check_size(sum(len(str(i)) for i in a[0]) + glue * len(a[0]), "join")


def _grows_count(name: str, at: int) -> Callable[[tuple[Any, ...], Mapping[str, Any]], None]:
    def check(a: tuple[Any, ...], k: Mapping[str, Any]) -> None:
        _check_size(int(_arg(a, k, at, name, 0)), name)

    return check


# Filters whose result can be far larger than their input: checked before they run.
_GROWING: Final[Mapping[str, Callable[[tuple[Any, ...], Mapping[str, Any]], None]]] = {
    "center": _grows_center,
    "indent": _grows_indent,
    "wordwrap": _grows_wordwrap,
    "join": _grows_join,
    "replace": lambda a, k: _check_replace(str(a[0]), tuple(a[1:]), k),
    "format": lambda a, k: _check_printf(str(a[0])),
    "batch": _grows_count("linecount", 1),
    "slice": _grows_count("slices", 1),
}


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` taking the context: never folded at compile time, charged and size-checked."""
    passes = _PassArg.from_obj(func)
    check = _GROWING.get(name)

    @pass_context
    def bounded(context: Context, *args: Any, **kwargs: Any) -> Any:
        spend()
        if check is not None:
            # Arguments of the wrong type: the filter itself refuses them more clearly.
            with contextlib.suppress(TypeError, ValueError, IndexError):
                check(args, kwargs)
        if passes is _PassArg.context:
            result = func(context, *args, **kwargs)
        elif passes is _PassArg.eval_context:
            result = func(context.eval_ctx, *args, **kwargs)
        elif passes is _PassArg.environment:
            result = func(context.environment, *args, **kwargs)
        else:
            result = func(*args, **kwargs)
        return _check_result(result, f"the filter {name}")

    return bounded


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    return {name: _bounded_filter(name, func) for name, func in filters.items()}


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if not 0 <= n <= _MAX_LIPSUM_PARAGRAPHS or not 0 < min <= max <= _MAX_LIPSUM_WORDS:
        raise SecurityError(
            f"lipsum takes at most {_MAX_LIPSUM_PARAGRAPHS} paragraphs"
            f" of at most {_MAX_LIPSUM_WORDS} words"
        )
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def _range(*args: int) -> range:
    spend()
    return safe_range(*args)  # at most the sandbox's MAX_RANGE items; each loop step is charged


def bounded_globals() -> dict[str, Any]:
    return {"lipsum": _lipsum, "range": _range}
