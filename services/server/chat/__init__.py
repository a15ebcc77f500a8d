"""The customer chat (C1-C3, S5): pages under `/chat` served beside the API (docs/chat.md)."""

from aiohttp import web

from services.server.chat import pages, presence, settings, widget
from services.server.chat.answers import chat_middleware
from services.server.chat.limits import setup

__all__ = ["chat_middleware", "presence", "routes", "settings", "setup"]

routes: list[web.RouteDef] = [
    *(r for r in pages.routes if isinstance(r, web.RouteDef)),
    *(r for r in widget.routes if isinstance(r, web.RouteDef)),
]
