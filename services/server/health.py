"""`/healthz` (the process answers) and `/readyz` (it can serve: its database answers), for a
process manager and a load balancer. Neither needs a token nor says more than ok or why not."""

from __future__ import annotations

from aiohttp import web

from services.errors import DeskbellError
from services.server.errors import error_response
from services.server.keys import SERVICE

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[SERVICE].ping()
    except DeskbellError as exc:
        return error_response(503, type(exc).__name__, str(exc))
    return web.json_response({"status": "ready"})
