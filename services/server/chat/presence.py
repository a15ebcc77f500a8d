"""C2 for agents: which customers have the chat open now (the desktop shows it on a customer's
conversation). Read from the presence rows every server process keeps, so any process
answers the same."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from services.chat import PRESENCE_BEAT
from services.errors import InputError
from services.retry_log import RetryLog
from services.server.endpoints import Call, Endpoints, Id
from services.server.keys import SERVICE

__all__ = ["routes", "setup"]

log = logging.getLogger(__name__)

MAX_IDS: Final = 500
api = Endpoints()
routes = api.routes


@api("GET", "/people/in-chat", summary="Which of these customers are in the chat now")
async def in_chat(call: Call, ids: list[Id]) -> list[int]:
    """`ids` (repeated): person ids; the answer lists those with a chat page open now."""
    if len(ids) > MAX_IDS:
        raise InputError(f"ask about at most {MAX_IDS} people at once")
    return sorted(await call.service.customers_in_chat(ids))


def setup(app: web.Application) -> None:
    """While the server runs, sweep expired presence every `PRESENCE_BEAT`: a page of a process
    that died lapses, and agents hear it as if it closed (any process may sweep)."""
    app.cleanup_ctx.append(_sweeping)


async def _sweeping(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(_sweep_forever(app), name="chat-presence")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sweep_forever(app: web.Application) -> None:
    chat = app[SERVICE].chat
    retry = RetryLog(log, "sweeping expired chat presence")
    while True:
        await asyncio.sleep(PRESENCE_BEAT.total_seconds())
        try:
            await chat.sweep()
            retry.succeeded()
        except Exception as exc:
            retry.failed(exc)
