"""The OpenAPI 3.1 document of `/api/v1/` (T1), written from the application's own route
table: every route declared with `endpoints.Endpoints` gives its operation (method, path,
who may call it, parameters, body, answer), and the JSON Schemas come from the dataclasses'
type hints. Nothing here is written by hand, so the document cannot drift from the routes."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final

from aiohttp import web

from services.server.auth import API_PREFIX, Access
from services.server.codec import Bounds
from services.server.endpoints import Call, Endpoint, Endpoints, endpoint_of

__all__ = ["TITLE", "document", "routes"]

TITLE: Final = "Deskbell team server"
VERSION: Final = "1"

api = Endpoints()
routes = api.routes

_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_ERRORS: Final = {
    "400": "The input is refused: the message says why",
    "401": "No valid session token",
    "403": "The caller may not do this",
    "404": "No such thing (or not one the caller may see)",
    "409": "A conflicting change",
    "429": "Too many failed attempts: see Retry-After",
    "503": "The database cannot answer now",
}
_ACCESS_TEXT: Final = {
    Access.PUBLIC: "Anyone: no token.",
    Access.CUSTOMER: "Any session, a customer's chat session too (it sees only its own).",
    Access.USER: "Users (agents and administrators).",
    Access.ADMIN: "Administrators.",
}


@api("GET", "/openapi.json", summary="This document", access=Access.PUBLIC)
async def openapi(call: Call) -> dict[str, Any]:
    return document(call.request.app)


def endpoints(app: web.Application) -> list[Endpoint]:
    """Every declared API call of `app`, in the order they were registered."""
    found = (endpoint_of(route.handler) for route in app.router.routes())
    return [e for e in found if e is not None]


def document(app: web.Application) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints(app):
        path = "/" + endpoint.path.removeprefix(API_PREFIX)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION},
        "servers": [{"url": API_PREFIX.rstrip("/")}],
        "paths": paths,
        "components": {
            "schemas": {**schemas.named, "Error": _ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.method.lower()}_{_slug(endpoint.path)}",
        "summary": endpoint.summary,
        "description": " ".join(
            filter(None, [endpoint.description, _ACCESS_TEXT[endpoint.access]])
        ),
        "x-access": endpoint.access.value,
        "security": [] if endpoint.access is Access.PUBLIC else [{"bearer": []}],
    }
    parameters = [
        {
            "name": p.name,
            "in": p.where,
            "required": p.required,
            "schema": schemas.of(p.kind),
            **({"explode": True} if typing.get_origin(_bare(p.kind)) is list else {}),
        }
        for p in endpoint.params
    ]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is bytes:
        content = {endpoint.body_media: {"schema": {"type": "string"}}}
        operation["requestBody"] = {"required": True, "content": content}
    elif endpoint.body is not None:
        content = {"application/json": {"schema": schemas.of(endpoint.body)}}
        operation["requestBody"] = {"required": True, "content": content}
    answer: dict[str, Any] = {"description": endpoint.summary}
    # A call that answers itself (a WebSocket's upgrade) has no body to describe.
    answers_itself = isinstance(endpoint.answer, type) and issubclass(
        endpoint.answer, web.StreamResponse
    )
    if endpoint.answer is bytes:
        answer["content"] = {endpoint.media: {"schema": {"type": "string"}}}
    elif endpoint.answer is not None and not answers_itself:
        answer["content"] = {"application/json": {"schema": schemas.of(endpoint.answer)}}
    status = endpoint.status if endpoint.answer is not None or endpoint.status != 200 else 204
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation["responses"] = {
        str(status): answer,
        **{code: {"description": text, "content": error} for code, text in _ERRORS.items()},
    }
    return operation


def _slug(path: str) -> str:
    words = path.removeprefix(API_PREFIX).replace("{", "").replace("}", "")
    return "_".join(w.replace("-", "_") for w in words.split("/") if w)


def _bare(kind: Any) -> Any:
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        return _bare(args[0])
    return kind


class _Schemas:
    """JSON Schemas (2020-12, as OpenAPI 3.1 uses) from type hints; each dataclass once, in
    `named`, referred to by `$ref`."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}
        self._owner: dict[str, type] = {}

    def of(self, kind: Any) -> dict[str, Any]:
        if kind is Any:
            return {}
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if origin is typing.Annotated:
            schema = dict(self.of(args[0]))
            for bounds in (a for a in kind.__metadata__ if isinstance(a, Bounds)):
                lo, hi = (
                    ("minimum", "maximum")
                    if _bare(args[0]) is int
                    else ("minItems", "maxItems")
                    if schema.get("type") == "array"
                    else ("minLength", "maxLength")
                )
                schema[lo], schema[hi] = bounds.lo, bounds.hi
            return schema
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(a) for a in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if kind is type(None) or kind is None:
            return {"type": "null"}
        if origin in (list, set, frozenset) or (
            origin is tuple and len(args) == 2 and args[1] is Ellipsis
        ):
            schema = {"type": "array", "items": self.of(args[0]) if args else {}}
            return {**schema, "uniqueItems": True} if origin in (set, frozenset) else schema
        if origin is tuple:
            items = [self.of(a) for a in args]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        if origin in (dict, Mapping) or kind in (dict, Mapping):
            value = args[1] if args else Any
            key_note = (
                {"propertyNames": {"pattern": "^-?[0-9]+$"}} if args and args[0] is int else {}
            )
            return {"type": "object", "additionalProperties": self.of(value), **key_note}
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            return self._dataclass(kind)
        if isinstance(kind, type) and issubclass(kind, Enum):
            return {"enum": [e.value for e in kind]}
        scalar = _SCALARS.get(kind)
        if scalar is None:
            raise TypeError(f"no JSON Schema for {kind!r}")
        return dict(scalar)

    def _dataclass(self, kind: type) -> dict[str, Any]:
        name = kind.__name__
        owner = self._owner.setdefault(name, kind)
        if owner is not kind:
            raise TypeError(f"two dataclasses named {name}: {owner} and {kind}")
        if name not in self.named:
            self.named[name] = {}  # a placeholder while its fields are written
            hints = _hints(kind)
            fields = dataclasses.fields(kind)
            self.named[name] = {
                "type": "object",
                "properties": {f.name: self.of(hints[f.name]) for f in fields},
                "required": [
                    f.name
                    for f in fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                ],
                "additionalProperties": False,
            }
            if kind.__doc__ and not kind.__doc__.startswith(f"{name}("):
                self.named[name]["description"] = " ".join(kind.__doc__.split())
        return {"$ref": f"#/components/schemas/{name}"}


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind, include_extras=True)


_SCALARS: Final[dict[Any, dict[str, str]]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    datetime: {"type": "string", "format": "date-time"},
}
