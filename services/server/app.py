"""The server's aiohttp application: its middlewares and every route module's routes."""

from __future__ import annotations

from aiohttp import web

from services.api import Service
from services.server import events, health, sessions
from services.server.auth import auth_middleware
from services.server.errors import errors_middleware
from services.server.keys import SERVICE

__all__ = ["MAX_BODY_BYTES", "build_app"]

# A message is at most a few hundred kilobytes of text; a template a few dozen.
MAX_BODY_BYTES = 2 * 1024 * 1024


def build_app(service: Service) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SERVICE] = service
    app.router.add_routes(health.routes)
    app.router.add_routes(sessions.routes)
    events.setup(app)
    return app
