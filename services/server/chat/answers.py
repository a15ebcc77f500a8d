"""How the chat answers (C3): its HTML pages and notices, redirects, and what every `/chat`
answer carries: the security headers, compression, errors as JSON with Retry-After on a 429."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from services.errors import DeskbellError
from services.server.chat.assets import render
from services.server.errors import error_response, status_of
from services.server.keys import SERVICE

__all__ = [
    "chat_enabled",
    "chat_middleware",
    "closed_page",
    "html_page",
    "notice",
    "page_settings",
    "see_other",
]


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def html_page(text: str, *, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def page_settings(request: web.Request) -> dict[str, Any]:
    config = request.app[SERVICE].config
    logo = config("chat.logo_url")
    if logo.startswith("data:"):  # uploaded: served on its own, cached, not in every page
        logo = f"/chat/logo?v={hashlib.sha256(logo.encode()).hexdigest()[:12]}"
    return {"title": config("chat.title"), "colour": config("chat.colour"), "logo_url": logo}


def chat_enabled(request: web.Request) -> bool:
    return request.app[SERVICE].config("chat.enabled") == "true"


def notice(
    request: web.Request, heading: str, text: str, *, status: int, start_link: bool = False
) -> web.Response:
    return html_page(
        render(
            "notice.html.j2",
            heading=heading,
            text=text,
            start_link=start_link,
            **page_settings(request),
        ),
        status=status,
    )


def closed_page(request: web.Request) -> web.Response:
    return notice(
        request,
        "The chat is closed",
        "The chat is not open at the moment. You can still answer any of our emails: "
        "your reply reaches us.",
        status=503,
    )


_CSP: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@web.middleware
async def chat_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """C3 on every `/chat` answer: the security headers, compression, and errors as the
    chat's own JSON (writes) with Retry-After on a 429."""
    if not request.path.startswith("/chat"):
        return await handler(request)  # type: ignore[no-any-return]
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = error_response(exc.status, type(exc).__name__, exc.reason)
        else:
            response = exc
    except DeskbellError as exc:
        response = error_response(status_of(exc), type(exc).__name__, str(exc))
        retry_at = getattr(exc, "retry_at", None)
        if isinstance(retry_at, datetime):
            wait = (retry_at - request.app[SERVICE].clock.now()).total_seconds()
            response.headers["Retry-After"] = str(max(1, round(wait)))
    if response.prepared:
        return response  # a WebSocket: its handshake is sent already
    response.headers.update(_SECURITY_HEADERS)
    if isinstance(response, web.Response) and response.body is not None:
        response.enable_compression()
    return response
