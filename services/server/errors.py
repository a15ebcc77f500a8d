"""How a refused or failed call looks over HTTP: one status per kind of error and a JSON body
`{"error": {"type": ..., "message": ...}}` whose message is the service's one readable line.
A bug is a 500 with no detail (logged here), never a traceback sent to a client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from services.errors import (
    AuthenticationError,
    DeskbellError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    StoreBusyError,
    StoreConflictError,
    StoreError,
    TooManyAttemptsError,
)
from services.server.keys import SERVICE

__all__ = ["error_response", "errors_middleware", "status_of"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Most specific first: TooManyAttemptsError is an AuthenticationError, NotFoundError an
# InputError, StoreBusyError and StoreConflictError StoreErrors.
_STATUS: Final[tuple[tuple[type[DeskbellError], int], ...]] = (
    (TooManyAttemptsError, 429),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (StoreConflictError, 409),
    (InputError, 400),
    (StoreBusyError, 503),
    (StoreError, 503),
)


def status_of(exc: DeskbellError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


def error_response(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own refusals (no such route, wrong method, body too large) in our shape.
        return error_response(exc.status, type(exc).__name__, exc.reason)
    except DeskbellError as exc:
        response = error_response(status_of(exc), type(exc).__name__, str(exc))
        if isinstance(exc, TooManyAttemptsError):
            # The service's clock decided retry_at (a test's is a ManualClock).
            wait = (exc.retry_at - request.app[SERVICE].clock.now()).total_seconds()
            response.headers["Retry-After"] = str(max(1, round(wait)))
        if isinstance(exc, AuthenticationError):
            response.headers["WWW-Authenticate"] = 'Bearer realm="deskbell"'
        return response
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "InternalError", "internal error; the server logged it")
