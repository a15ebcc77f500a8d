"""One access-log line per API call, at INFO, and a request id that ties a call's lines
together (echoed to the client as X-Request-ID).

The line carries the method, the path without its query, the status, the duration, the
client's address and the request id; never a header or a body, so no token or password
reaches a log. The fields ride on the record (`extra`): `--log-format json` writes them as
JSON fields, the readable format has them in its message. Health probes that succeed are
not logged (a load balancer asks every few seconds).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from services.server.sessions import client_address

__all__ = ["ACCESS_LOG", "AccessLogger", "request_id_middleware"]

ACCESS_LOG: Final = logging.getLogger("deskbell.access")
_REQUEST_ID: Final = web.RequestKey("request_id", str)
_CLIENT: Final = web.RequestKey("client", str)
_GIVEN_ID: Final = re.compile(r"[A-Za-z0-9._-]{8,64}")  # a proxy's id, if it is a sane one
_QUIET: Final = frozenset({"/healthz", "/readyz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _request_id(request: BaseRequest) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _GIVEN_ID.fullmatch(given) else secrets.token_hex(8)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[_REQUEST_ID] = rid = _request_id(request)
    request[_CLIENT] = client_address(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = rid
        raise
    response.headers["X-Request-ID"] = rid
    return response


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access logger (AppRunner's `access_log_class`), writing `ACCESS_LOG`."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path in _QUIET and response.status < 400:
            return
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(time * 1000, 1),
            "request_id": request.get(_REQUEST_ID) or "-",
            "client": request.get(_CLIENT) or request.remote or "-",
        }
        self.logger.info(
            "%(method)s %(path)s %(status)s %(duration_ms)sms %(client)s id=%(request_id)s",
            fields,
            extra=fields,
        )
