"""The customer chat (C1-C3, S5): pages under `/chat` served beside the API (docs/chat.md)."""

from services.server.chat import presence, settings
from services.server.chat.pages import chat_middleware, routes, setup

__all__ = ["chat_middleware", "presence", "routes", "settings", "setup"]
