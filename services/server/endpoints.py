"""How an API call is declared, once: its method and path, who may call it, its summary, and
the handler, whose signature says the rest (path and query parameters and their types, the
body's type, the answer's type). The route table, the checks of who may call (`auth`), the
reading of parameters and bodies (one clear 400 each) and the OpenAPI document all come from
this one declaration.

    @api("GET", "/items/{number}", summary="One item")
    async def item(call: Call, number: Id) -> ItemInfo:
        return await call.service.item(number)

Parameters named in the path are path parameters; one named `body` is the request body (a
dataclass read by `codec.from_plain`, or `bytes` for a raw one); the others are query
parameters, required unless they have a default. The answer is written by `codec.plain`;
`None` answers with no content, `bytes` with the declared media type; a handler annotated
`-> web.WebSocketResponse` (any `StreamResponse`) answers itself (the event stream).
"""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Final

from aiohttp import web

from services.accounts import SignedIn
from services.api import Service
from services.errors import InputError
from services.server.auth import API_PREFIX, Access, allow, who
from services.server.codec import Bounds, from_plain, json_response
from services.server.keys import SERVICE, TRUSTED_PROXIES, Network
from services.server.redact import for_customer

__all__ = [
    "MAX_ID",
    "Access",
    "Call",
    "ClientId",
    "Endpoint",
    "Endpoints",
    "Id",
    "Offset",
    "Page",
    "Param",
    "client_address",
    "endpoint_of",
    "read_json",
]

# Row ids and item numbers are INTEGER on PostgreSQL: a larger number can name nothing.
MAX_ID: Final = 2**31 - 1
Id = Annotated[int, Bounds(1, MAX_ID)]
Page = Annotated[int, Bounds(1, 500)]
Offset = Annotated[int, Bounds(0, MAX_ID)]
# T5: the id a client gives its own write (a uuid4's 36 characters), so a resend is applied once.
ClientId = Annotated[str, Bounds(1, 36)]
# Path and query text: an address, a key, a search; none is longer.
MAX_QUERY_CHARS: Final = 500

_ENDPOINT: Final = "_deskbell_endpoint"
_PATH_NAMES: Final = re.compile(r"{(\w+)}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Any  # the type hint
    where: typing.Literal["path", "query"]
    required: bool
    default: Any = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # with the /api/v1/ prefix, as registered
    summary: str
    description: str
    access: Access
    status: int  # on success
    params: tuple[Param, ...]
    body: Any  # a dataclass, bytes (raw), or None
    answer: Any  # the answer's type hint; None: no content
    media: str  # the answer's media type when it is bytes, else JSON
    body_media: str


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, the service, and who asks."""

    request: web.Request

    @property
    def service(self) -> Service:
        return self.request.app[SERVICE]

    @property
    def who(self) -> SignedIn:
        return who(self.request)

    @property
    def address(self) -> str:
        return client_address(self.request)


def client_address(request: web.Request) -> str:
    """The client's address, which sign-in attempts are counted against (T4).

    The direct peer, unless it is a trusted reverse proxy (`deskbell serve --trusted-proxy`):
    then X-Forwarded-For is read from its right end (the entry the proxy itself added),
    skipping further trusted proxies, and the first other address is the client. Entries to
    its left were written by the client and are never believed; from any other peer the
    header is ignored altogether, so a client cannot choose the address it is throttled by.
    """
    peer = request.remote or "unknown"
    trusted = request.app[TRUSTED_PROXIES]
    if not trusted or not _is_in(peer, trusted):
        return peer
    client = peer
    hops = ",".join(request.headers.getall("X-Forwarded-For", ())).split(",")
    for hop in reversed(hops):
        hop = hop.strip()
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: what is left of it cannot be trusted either
        client = str(address)
        if not _is_in(client, trusted):
            break
    return client


def _is_in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; InputError (400) for anything else."""
    try:
        body = await request.json()
    except ValueError:
        raise InputError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def endpoint_of(handler: object) -> Endpoint | None:
    found = getattr(handler, _ENDPOINT, None)
    return found if isinstance(found, Endpoint) else None


class Endpoints:
    """One area's API calls: `routes` for `build_app`, declared with `@api(method, path, ...)`."""

    def __init__(self) -> None:
        self.routes = web.RouteTableDef()

    def __call__(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        access: Access = Access.USER,
        status: int = 200,
        media: str = "application/json",
        body_media: str = "application/json",
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        def declare(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            endpoint = _declaration(
                fn,
                method=method,
                path=API_PREFIX + path.lstrip("/"),
                summary=summary,
                access=access,
                status=status,
                media=media,
                body_media=body_media,
            )

            async def handle(request: web.Request) -> web.StreamResponse:
                _refuse_unknown_query(request, endpoint)
                kwargs = {p.name: _param(request, p) for p in endpoint.params}
                if endpoint.body is not None:
                    kwargs["body"] = await _body(request, endpoint.body)
                call = Call(request)
                answer = await fn(call, **kwargs)
                if endpoint.access is Access.CUSTOMER and call.who.customer:
                    answer = for_customer(answer, call.who.person_id)
                return _respond(endpoint, answer)

            handle.__name__ = handle.__qualname__ = fn.__name__
            handle.__doc__ = fn.__doc__
            setattr(handle, _ENDPOINT, endpoint)
            allow(access)(handle)
            self.routes.route(method, endpoint.path)(handle)
            return fn

        return declare


def _declaration(
    fn: Callable[..., Awaitable[Any]],
    *,
    method: str,
    path: str,
    summary: str,
    access: Access,
    status: int,
    media: str,
    body_media: str,
) -> Endpoint:
    hints = typing.get_type_hints(fn, include_extras=True)
    in_path = set(_PATH_NAMES.findall(path))
    params: list[Param] = []
    body: Any = None
    for name, parameter in list(inspect.signature(fn).parameters.items())[1:]:
        kind = hints[name]
        if name == "body":
            body = kind
        elif name in in_path:
            params.append(Param(name=name, kind=kind, where="path", required=True))
        else:
            required = parameter.default is inspect.Parameter.empty
            default = None if required else parameter.default
            params.append(Param(name, kind, "query", required, default))
    missing = in_path - {p.name for p in params}
    if missing:
        raise TypeError(f"{fn.__name__} does not take the path's {', '.join(sorted(missing))}")
    answer = hints.get("return")
    return Endpoint(
        method=method,
        path=path,
        summary=summary,
        description=inspect.cleandoc(fn.__doc__ or ""),
        access=access,
        status=status,
        params=tuple(params),
        body=body,
        answer=None if answer is type(None) else answer,
        media=media,
        body_media=body_media,
    )


# --- reading a call ---------------------------------------------------------------------------


def _refuse_unknown_query(request: web.Request, endpoint: Endpoint) -> None:
    """A query parameter the call does not take is refused, not ignored (nobody names who
    acts, or a viewer: that is the token's person)."""
    known = {p.name for p in endpoint.params if p.where == "query"}
    unknown = sorted(set(request.query) - known)
    if unknown:
        names = ", ".join(repr(n[:40]) for n in unknown[:5])
        raise InputError(f"the query has parameters this call does not take: {names}")


def _param(request: web.Request, param: Param) -> Any:
    if param.where == "path":
        return _from_text(param.kind, request.match_info[param.name], f"the path's {param.name}")
    values = request.query.getall(param.name, [])
    where = f"the query's {param.name}"
    base, _ = _unwrap(param.kind)
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        return [_from_text(item, v, where) for v in values]
    if not values:
        if param.required:
            raise InputError(f"{where} is required")
        return param.default
    if len(values) > 1:
        raise InputError(f"{where} is given more than once")
    return _from_text(param.kind, values[0], where)


def _unwrap(kind: Any) -> tuple[Any, tuple[Any, ...]]:
    """The type under `Annotated[...]` and `X | None`, and the annotations."""
    extras: tuple[Any, ...] = ()
    if typing.get_origin(kind) is Annotated:
        extras = kind.__metadata__
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(arms) == 1:
            return _unwrap(arms[0])[0], extras
    return kind, extras


def _from_text(kind: Any, text: str, where: str) -> Any:
    """A path or query parameter's text as `kind`: an integer, a boolean, an enum or text."""
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"{where} is longer than {MAX_QUERY_CHARS} characters")
    base, _ = _unwrap(kind)
    value: Any = text
    if base is int:
        if not re.fullmatch(r"-?[0-9]{1,19}", text):  # a change position is a BIGINT
            raise InputError(f"{where} must be a whole number, not {text!r:.40}")
        value = int(text)
    elif base is bool:
        if text not in ("true", "false"):
            raise InputError(f"{where} must be true or false, not {text!r:.40}")
        value = text == "true"
    elif isinstance(base, type) and issubclass(base, Enum):
        choices = [str(e.value) for e in base]
        if text not in choices:
            raise InputError(f"{where} must be one of {', '.join(choices)}, not {text!r:.40}")
    try:
        return from_plain(kind, value, where=where)
    except ValueError as exc:
        raise InputError(str(exc)) from None


async def _body(request: web.Request, kind: Any) -> Any:
    if kind is bytes:
        raw = await request.read()
        if not raw:
            raise InputError("the request body is empty")
        return raw
    value = await read_json(request)
    if dataclasses.is_dataclass(kind):
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(
                f"the request body has unknown fields: {', '.join(map(repr, unknown))[:200]}"
            )
    try:
        return from_plain(kind, value, where="the request body")
    except ValueError as exc:
        raise InputError(str(exc)[:500]) from None


def _respond(endpoint: Endpoint, answer: Any) -> web.StreamResponse:
    if isinstance(answer, web.StreamResponse):  # a handler that answered itself (a WebSocket)
        return answer
    if endpoint.answer is None:
        return web.Response(status=endpoint.status if endpoint.status != 200 else 204)
    if isinstance(answer, bytes):
        return web.Response(body=answer, status=endpoint.status, content_type=endpoint.media)
    return json_response(answer, status=endpoint.status)
