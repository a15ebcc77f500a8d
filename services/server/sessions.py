"""Signing in and out over HTTP (T4): a device session's token is shown once, in the answer to
the sign-in; `DELETE /api/v1/sessions/current` ends the caller's own."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from services.errors import InputError
from services.server.auth import API_PREFIX, public, who
from services.server.codec import json_response
from services.server.keys import SERVICE, TRUSTED_PROXIES, Network

__all__ = ["client_address", "read_json", "routes"]

routes = web.RouteTableDef()


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; InputError (400) for anything else."""
    try:
        body = await request.json()
    except ValueError:
        raise InputError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InputError(f"{name!r} is required and must be text")
    return value


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


@routes.post(API_PREFIX + "sessions")
@public
async def sign_in(request: web.Request) -> web.Response:
    body = await read_json(request)
    new = await request.app[SERVICE].sign_in(
        email=text_field(body, "email"),
        password=text_field(body, "password"),
        device=text_field(body, "device"),
        address=client_address(request),
    )
    return json_response({"token": new.token, "who": new.who}, status=201)


@routes.delete(API_PREFIX + "sessions/current")
async def sign_out(request: web.Request) -> web.Response:
    await request.app[SERVICE].sign_out(who(request))
    return web.Response(status=204)


@routes.get(API_PREFIX + "me")
async def me(request: web.Request) -> web.Response:
    return json_response(who(request))
