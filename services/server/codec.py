"""The service's answers as JSON: its frozen dataclasses field by field, times as ISO 8601
in UTC, enums by value. One encoding for every response and event; `from_plain` reads it
back into the same types (the client)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, cast

from aiohttp import web

from services.errors import DeskbellError

__all__ = ["from_plain", "json_response", "plain"]

T = TypeVar("T")


def plain(value: Any) -> Any:
    """`value` as JSON-ready lists, dicts, strings, numbers, booleans and None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
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


def from_plain(tp: type[T], value: object) -> T:
    """`value`, as `plain` made it, back into `tp` (a dataclass, a list of them...), by its
    type hints. What does not fit is a DeskbellError naming where: the answer is not what this
    client understands."""
    return cast(T, _decode(tp, value, "the answer"))


def _decode(tp: Any, value: object, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _decode(option, value, where)
            except DeskbellError:
                continue
        raise _unexpected(tp, value, where)
    if origin is typing.Literal:
        if value in args:
            return value
        raise _unexpected(tp, value, where)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _unexpected(tp, value, where)
        hints = _hints(tp)
        fields = {
            f.name: _decode(hints[f.name], value[f.name], f"{where}.{f.name}")
            for f in dataclasses.fields(tp)
            if f.init and f.name in value
        }
        try:
            return tp(**fields)
        except TypeError as exc:
            raise DeskbellError(f"{where} lacks a field the client needs: {exc}") from None
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        if not isinstance(value, list):
            raise _unexpected(tp, value, where)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _unexpected(tp, value, where)
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_decode(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        items = [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return (origin or tp)(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise _unexpected(tp, value, where)
        key_tp, value_tp = args or (Any, Any)
        return {
            _decode(key_tp, _key(key_tp, k), where): _decode(value_tp, v, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            raise _unexpected(tp, value, where) from None
    if tp is datetime:
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        raise _unexpected(tp, value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise _unexpected(tp, value, where)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _unexpected(tp, value, where)


def _key(tp: Any, key: str) -> object:
    """JSON keys are text: an int-keyed mapping (counts by conversation) comes back as one."""
    if tp is int and key.lstrip("-").isdigit():
        return int(key)
    return key


@cache
def _hints(tp: type) -> dict[str, Any]:
    return typing.get_type_hints(tp)


def _unexpected(tp: Any, value: object, where: str) -> DeskbellError:
    name = getattr(tp, "__name__", None) or str(tp)
    shown = json.dumps(value, ensure_ascii=False)[:60] if _jsonable(value) else repr(value)[:60]
    return DeskbellError(f"{where} is {shown}, not the {name} this client understands")


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
