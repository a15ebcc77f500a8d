"""C2 for agents: which customers have the chat open now (the desktop shows it on a customer's
conversation). Read from the presence rows every server process keeps, so any process
answers the same."""

from __future__ import annotations

from typing import Final

from services.errors import InputError
from services.server.endpoints import Call, Endpoints, Id

__all__ = ["routes"]

MAX_IDS: Final = 500
api = Endpoints()
routes = api.routes


@api("GET", "/people/in-chat", summary="Which of these customers are in the chat now")
async def in_chat(call: Call, ids: list[Id]) -> list[int]:
    """`ids` (repeated): person ids; the answer lists those with a chat page open now."""
    if len(ids) > MAX_IDS:
        raise InputError(f"ask about at most {MAX_IDS} people at once")
    return sorted(await call.service.customers_in_chat(ids))
