"""The service's answers as JSON: its frozen dataclasses field by field, times as ISO 8601
in UTC, enums by value. One encoding for every response and event; `from_plain` reads it
back into the same dataclasses by their type hints (the client's side)."""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, cast

from aiohttp import web

__all__ = ["Bounds", "from_plain", "json_response", "plain"]

T = TypeVar("T")


def plain(value: Any) -> Any:
    """`value` as JSON-ready lists, dicts, strings, numbers, booleans and None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, bytes):
        raise TypeError("bytes are not sent as JSON")
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_response(value: Any, *, status: int = 200) -> web.Response:
    return web.json_response(plain(value), status=status, dumps=_dumps)


# --- reading it back ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bounds:
    """`Annotated[int, Bounds(lo, hi)]`: the integers a field or a parameter accepts (a row id
    fits PostgreSQL's INTEGER; a page size is small); on a list or a text, its length.
    Checked by `from_plain`, stated in the OpenAPI document."""

    lo: int
    hi: int


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def from_plain(kind: type[T] | Any, value: Any, *, where: str = "the answer") -> T:
    """The inverse of `plain`: `value` (parsed JSON) as an instance of `kind`, a type hint
    such as `PersonInfo`, `list[ConversationRow]` or `int | None`. ValueError (with where)
    if `value` does not have that shape."""
    return cast(T, _read(kind, value, where))


def _wrong(where: str, what: str, value: Any) -> ValueError:
    return ValueError(f"{where}: expected {what}, got {type(value).__name__} {value!r:.60}")


def _read(kind: Any, value: Any, where: str) -> Any:
    if kind is Any:
        return value
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Annotated:
        read = _read(args[0], value, where)
        for bounds in (a for a in kind.__metadata__ if isinstance(a, Bounds)):
            size = read if isinstance(read, int) else len(read)
            if not bounds.lo <= size <= bounds.hi:
                what = "an integer" if isinstance(read, int) else "a length"
                raise _wrong(where, f"{what} from {bounds.lo} to {bounds.hi}", value)
        return read
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        problems = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _read(arm, value, where)
            except ValueError as exc:
                problems.append(str(exc))
        raise ValueError("; ".join(problems)) if problems else _wrong(where, str(kind), value)
    if origin is typing.Literal:
        if value not in args:
            raise _wrong(where, f"one of {args}", value)
        return value
    if kind is type(None) or kind is None:
        if value is not None:
            raise _wrong(where, "null", value)
        return None
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, list):
            raise _wrong(where, "a list", value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _wrong(where, f"a list of {len(args)}", value)
            return tuple(
                _read(a, v, f"{where}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        items = [_read(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return origin(items) if origin is not list else items
    if origin in (dict, Mapping) or kind in (dict, Mapping):
        if not isinstance(value, dict):
            raise _wrong(where, "an object", value)
        key, val = args or (str, Any)
        return {
            _read_key(key, k, where): _read(val, v, f"{where}[{k!r}]") for k, v in value.items()
        }
    if isinstance(kind, type):
        if dataclasses.is_dataclass(kind):
            return _read_dataclass(kind, value, where)
        return _read_scalar(kind, value, where)
    raise TypeError(f"{where}: cannot read {kind!r} from JSON")


def _read_key(kind: Any, key: str, where: str) -> Any:
    """A JSON object's key, always text: an int key was written as its digits."""
    if kind is int:
        try:
            return int(key)
        except ValueError:
            raise _wrong(where, "an integer key", key) from None
    return _read(kind, key, where)


def _read_dataclass(kind: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _wrong(where, f"a {kind.__name__} object", value)
    hints = _hints(kind)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if f.name in value:
            fields[f.name] = _read(hints[f.name], value[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}: {kind.__name__} has no {f.name!r}")
    return kind(**fields)


def _read_scalar(kind: type, value: Any, where: str) -> Any:
    if issubclass(kind, Enum):
        try:
            return kind(value)
        except ValueError:
            raise _wrong(where, f"a {kind.__name__}", value) from None
    if kind is datetime:
        if not isinstance(value, str):
            raise _wrong(where, "an ISO 8601 time", value)
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise _wrong(where, "an ISO 8601 time", value) from None
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong(where, "true or false", value)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(where, "an integer", value)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(where, "a number", value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _wrong(where, "text", value)
        return value
    raise TypeError(f"{where}: cannot read {kind.__name__} from JSON")
