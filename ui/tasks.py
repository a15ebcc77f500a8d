"""The tasks the UI starts, each kept until it ends (qasync's asyncSlot keeps none: NOTES.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Tasks"]

log = logging.getLogger(__name__)


class Tasks:
    """Keeps a reference to every task it starts (qasync's asyncSlot does not: NOTES.md) and
    logs failures instead of losing them."""

    def __init__(self, *, on_error: Callable[[BaseException], None] | None = None) -> None:
        """`on_error`: also told of each failure (a dialog shows it to the person)."""
        self._running: set[asyncio.Task[Any]] = set()
        self._on_error = on_error

    def start(self, coro: Coroutine[Any, Any, Any], *, name: str = "") -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro, name=name or None)
        self._running.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=error)
            if self._on_error is not None:
                self._on_error(error)

    async def drain(self) -> None:
        """Wait for what is running (tests, shut-down)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    def cancel(self) -> None:
        for task in list(self._running):
            task.cancel()

    def __len__(self) -> int:
        return len(self._running)
