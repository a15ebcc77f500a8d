"""Who asks (T4): every `/api/v1/` call carries `Authorization: Bearer <token>`, checked
against the live sessions on each call (a revoked token stops working at once). The few calls
a client makes before it has a token (signing in, resetting a password) are marked `public`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final, TypeVar

from aiohttp import web

from services.accounts import SignedIn
from services.errors import AuthenticationError, PermissionDeniedError
from services.server.keys import SERVICE

__all__ = [
    "API_PREFIX",
    "Access",
    "access_of",
    "admin",
    "allow",
    "auth_middleware",
    "check_access",
    "public",
    "who",
]

API_PREFIX: Final = "/api/v1/"
_WHO: Final = web.RequestKey("who", SignedIn)
_ACCESS_ATTR: Final = "_deskbell_access"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


class Access(StrEnum):
    """Who may make an API call; the others are refused (403) before its handler runs. A
    finer rule ("oneself, or an administrator") is the service's."""

    PUBLIC = "public"  # no token: signing in, a password reset
    CUSTOMER = "customer"  # a customer's chat session too (R2: the service filters for them)
    USER = "user"  # users: agents and administrators
    ADMIN = "admin"


def allow(access: Access) -> Callable[[H], H]:
    """Mark a handler with who may call it (`endpoints.Endpoints` does for every call)."""

    def mark(handler: H) -> H:
        setattr(handler, _ACCESS_ATTR, access)
        return handler

    return mark


def public(handler: H) -> H:
    """This API call needs no token (signing in, a password reset)."""
    return allow(Access.PUBLIC)(handler)


def access_of(handler: object) -> Access:
    """Who may call `handler`: users only unless it says otherwise, so a call that forgets to
    say is never open to customers."""
    found = getattr(handler, _ACCESS_ATTR, Access.USER)
    return found if isinstance(found, Access) else Access.USER


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


def check_access(access: Access, caller: SignedIn) -> None:
    """T4, R2: a customer makes only the calls open to customers; an agent no admin call."""
    if caller.customer and access is not Access.CUSTOMER:
        raise PermissionDeniedError("this call is not open to customers")
    if access is Access.ADMIN and not caller.is_admin:
        raise PermissionDeniedError("only an administrator can do this")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = access_of(request.match_info.handler)
    if request.path.startswith(API_PREFIX) and access is not Access.PUBLIC:
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError("sign in first: this call needs a session token")
        caller = await request.app[SERVICE].authenticate(token)
        check_access(access, caller)
        request[_WHO] = caller
    return await handler(request)
