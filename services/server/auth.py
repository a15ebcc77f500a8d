"""Who asks (T4): every `/api/v1/` call carries `Authorization: Bearer <token>`, checked
against the live sessions on each call (a revoked token stops working at once). The few calls
a client makes before it has a token (signing in, resetting a password) are marked `public`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from aiohttp import web

from services.accounts import SignedIn
from services.errors import AuthenticationError, PermissionDeniedError
from services.server.keys import SERVICE

__all__ = ["API_PREFIX", "admin", "auth_middleware", "public", "who"]

API_PREFIX: Final = "/api/v1/"
_WHO: Final = web.RequestKey("who", SignedIn)
_PUBLIC_ATTR: Final = "_deskbell_public"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def public(handler: H) -> H:
    """This API call needs no token (signing in, a password reset)."""
    setattr(handler, _PUBLIC_ATTR, True)
    return handler


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def who(request: web.Request) -> SignedIn:
    """The signed-in caller of an authenticated API call."""
    if _WHO not in request:
        raise AuthenticationError("sign in first")
    return request[_WHO]


def admin(request: web.Request) -> SignedIn:
    """The caller, who must be an administrator."""
    caller = who(request)
    if not caller.is_admin:
        raise PermissionDeniedError("only an administrator can do this")
    return caller


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(API_PREFIX) and not getattr(handler, _PUBLIC_ATTR, False):
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError("sign in first: this call needs a session token")
        request[_WHO] = await request.app[SERVICE].authenticate(token)
    return await handler(request)
