"""The server's aiohttp application: its middlewares and every route module's routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aiohttp import web

from services.api import Service
from services.server import (
    center,
    chat,
    conversations,
    events,
    health,
    items,
    openapi,
    people,
    sessions,
    sync,
)
from services.server.access_log import request_id_middleware
from services.server.auth import auth_middleware
from services.server.errors import errors_middleware
from services.server.keys import SERVICE, TRUSTED_PROXIES, Network

__all__ = ["MAX_BODY_BYTES", "ROUTE_TABLES", "build_app"]

# A message is at most a few hundred kilobytes of text; a template a few dozen.
MAX_BODY_BYTES = 2 * 1024 * 1024


# Every route module's routes, in the order they are matched (a fixed path before a
# parameter: /sessions/current before /sessions/{session_id}).
ROUTE_TABLES: Final = (
    health.routes,
    sessions.routes,
    chat.presence.routes,  # /people/in-chat before /people/{email}
    people.routes,
    items.routes,
    conversations.routes,
    center.routes,
    sync.routes,
    events.routes,
    openapi.routes,
    chat.settings.routes,
    chat.routes,
)


def build_app(service: Service, *, trusted_proxies: Sequence[Network] = ()) -> web.Application:
    """`trusted_proxies`: the reverse proxies whose X-Forwarded-For names the client."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            errors_middleware,
            auth_middleware,
            chat.chat_middleware,
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SERVICE] = service
    app[TRUSTED_PROXIES] = tuple(trusted_proxies)
    for table in ROUTE_TABLES:
        app.router.add_routes(table)
    events.setup(app)  # the stream's hub; its route is in ROUTE_TABLES
    chat.setup(app)  # the chat's rate limits
    chat.presence.setup(app)  # expired presence lapses with an event (C2)
    return app
