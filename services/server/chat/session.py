"""Who a chat page belongs to (C1, C3): the customer session in its cookie, and the CSRF
token every write must carry.

The cookie holds the token of an ordinary device session of the customer (stored hashed,
listed and revocable like an agent's), `HttpOnly` so no script reads it, `Secure` and
`SameSite=Lax` so another site's form or script never sends it along with a write. The CSRF
token is an HMAC of the session's token under the workspace's key: bound to the session,
stored nowhere, checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Final

from aiohttp import web

from services.accounts import SignedIn
from services.errors import AuthenticationError, PermissionDeniedError
from services.server.keys import SERVICE

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "ChatSession",
    "check_csrf",
    "clear_cookie",
    "current",
    "set_cookie",
]

# `__Host-`: the browser takes it only Secure, for this host alone, on path /.
COOKIE: Final = "__Host-deskbell-chat"
COOKIE_LIFETIME: Final = timedelta(days=30)
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf"
_CSRF_CONTEXT: Final = b"deskbell/chat-csrf/v1:"


class ChatSession:
    """The signed-in customer of a chat request and the CSRF token of their session."""

    def __init__(self, who: SignedIn, token: str, key: bytes) -> None:
        self.who = who
        self.token = token
        self.csrf = hmac.new(key, _CSRF_CONTEXT + token.encode(), hashlib.sha256).hexdigest()


async def current(request: web.Request) -> ChatSession | None:
    """The customer whose live session the request's cookie holds; None without one (an
    agent's session in the cookie is no customer's either)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    service = request.app[SERVICE]
    try:
        who = await service.authenticate(token)
    except AuthenticationError:
        return None
    if not who.customer:
        return None
    return ChatSession(who, token, service.token_key)


def check_csrf(session: ChatSession, given: str | None) -> None:
    """C3: a write carries its session's CSRF token (a header or a form field)."""
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise PermissionDeniedError("the page's security token is missing or wrong: reload it")


def set_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(COOKIE_LIFETIME.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
