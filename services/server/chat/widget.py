"""C1, C3: the widget a help desk puts on its site, and the emailed code that lets a
customer in from it. Nothing of any conversation is shown before the code is confirmed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from aiohttp import web

from services.errors import (
    AuthenticationError,
    InputError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from services.server.chat.answers import (
    chat_enabled,
    closed_page,
    html_page,
    page_settings,
    see_other,
)
from services.server.chat.assets import assets, render
from services.server.chat.limits import LIMITS
from services.server.chat.session import CSRF_FIELD, current, set_cookie
from services.server.endpoints import client_address
from services.server.keys import SERVICE

__all__ = ["routes"]

routes = web.RouteTableDef()

_START_COOKIE: Final = "__Host-deskbell-start"
_START_CONTEXT: Final = b"deskbell/chat-start/v1:"


def _start_csrf(request: web.Request, nonce: str) -> str:
    key = request.app[SERVICE].token_key
    return hmac.new(key, _START_CONTEXT + nonce.encode(), hashlib.sha256).hexdigest()


def _start_page(
    request: web.Request, *, step: str, status: int = 200, error: str = "", **fields: str
) -> web.Response:
    """The widget's page. Before a session there is no session token to bind a CSRF token
    to: a random cookie is (double submit, signed), so another site cannot post the form."""
    nonce = request.cookies.get(_START_COOKIE, "")
    fresh = not (16 <= len(nonce) <= 64 and nonce.isascii() and nonce.isalnum())
    if fresh:
        nonce = secrets.token_hex(16)
    response = html_page(
        render(
            "start.html.j2",
            step=step,
            error=error,
            csrf=_start_csrf(request, nonce),
            name=fields.get("name", ""),
            email=fields.get("email", ""),
            **page_settings(request),
        ),
        status=status,
    )
    if fresh:
        response.set_cookie(
            _START_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="Strict"
        )
    return response


async def _start_form(request: web.Request) -> dict[str, str]:
    if not chat_enabled(request):
        raise PermissionDeniedError("the chat is closed")
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    nonce = request.cookies.get(_START_COOKIE, "")
    given = fields.get(CSRF_FIELD, "")
    if not nonce or not hmac.compare_digest(given.encode(), _start_csrf(request, nonce).encode()):
        raise PermissionDeniedError("the page's security token is missing or wrong: reload it")
    return fields


@routes.get("/chat/widget.js")
async def widget(request: web.Request) -> web.StreamResponse:
    """The script a help desk puts on its own site (docs/chat.md)."""
    found = assets()["widget.js"]
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers={"ETag": found.etag})
    response = web.Response(body=found.body, content_type=found.content_type, charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["ETag"] = found.etag
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # other sites load it
    return response


@routes.get("/chat/start")
async def start(request: web.Request) -> web.StreamResponse:
    if not chat_enabled(request):
        return closed_page(request)
    if await current(request) is not None:
        return see_other("/chat")
    return _start_page(request, step="details")


@routes.post("/chat/start/code")
async def start_code(request: web.Request) -> web.StreamResponse:
    """Name and address in; a code out by email. Nothing of any conversation is shown."""
    fields = await _start_form(request)
    name, email = fields.get("name", "")[:200], fields.get("email", "")[:320]
    service = request.app[SERVICE]
    try:
        request.app[LIMITS].codes.take(client_address(request), service.clock.now())
        await service.chat.send_code(name=name, email=email)
    except InputError as exc:
        return _start_page(
            request, step="details", status=400, error=str(exc), name=name, email=email
        )
    except TooManyAttemptsError as exc:
        page = _start_page(
            request, step="details", status=429, error=str(exc), name=name, email=email
        )
        wait = (exc.retry_at - service.clock.now()).total_seconds()
        page.headers["Retry-After"] = str(max(1, round(wait)))
        return page
    except PermissionDeniedError as exc:
        return _start_page(
            request, step="details", status=403, error=str(exc), name=name, email=email
        )
    return _start_page(request, step="code", email=email.strip().lower())


@routes.post("/chat/start/confirm")
async def start_confirm(request: web.Request) -> web.StreamResponse:
    fields = await _start_form(request)
    email = fields.get("email", "")[:320]
    try:
        session = await request.app[SERVICE].chat.confirm_code(
            email=email, code=fields.get("code", "")[:20], address=client_address(request)
        )
    except (AuthenticationError, InputError) as exc:
        return _start_page(request, step="code", status=403, error=str(exc), email=email)
    response = see_other("/chat")
    set_cookie(response, session.token)
    response.del_cookie(_START_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
