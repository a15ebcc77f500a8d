"""What this process does when the change feed says something changed, here or elsewhere.

A post wakes the fallback scheduler (it has new deliveries to wait for), a queued email the
outbox, a settings change reloads the settings, an automation or template change the
automations and the notification template. Every process reacts the same way to every
change, whoever wrote it: a CLI call is noticed by the running app exactly like its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

from services.views import ChangeEvent, ChangeKind

__all__ = ["ChangeReactor", "Scheduler", "Wakeable"]

log = logging.getLogger(__name__)

# The scheduler decides from deliveries, people's settings, follows and the workspace's. A
# message or a seen mark cannot make anything due sooner than the scheduler's own gap.
_SCHEDULER_NOW = frozenset({ChangeKind.PERSON, ChangeKind.SETTINGS, ChangeKind.FOLLOW})
_SCHEDULER_SOON = frozenset({ChangeKind.MESSAGE, ChangeKind.SEEN})
_OUTBOX = frozenset({ChangeKind.EMAIL, ChangeKind.SETTINGS})
_TEMPLATES = frozenset({ChangeKind.TEMPLATE, ChangeKind.AUTOMATION})


class Wakeable(Protocol):
    def wake(self) -> None: ...


class Scheduler(Wakeable, Protocol):
    def wake_soon(self) -> None: ...


class ChangeReactor:
    """A change-feed listener: wakes, reloads and clears what the changes concern."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        outbox: Wakeable,
        reload_settings: Callable[[], Awaitable[None]],
        forget_automations: Callable[[], None],
        reload_templates: Callable[[], Awaitable[None]],
    ) -> None:
        self._scheduler = scheduler
        self._outbox = outbox
        self._reload_settings = reload_settings
        self._forget_automations = forget_automations
        self._reload_templates = reload_templates
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, events: Sequence[ChangeEvent]) -> None:
        kinds = {e.kind for e in events}
        if kinds & _SCHEDULER_NOW:
            self._scheduler.wake()
        elif kinds & _SCHEDULER_SOON:
            self._scheduler.wake_soon()
        if kinds & _OUTBOX:
            self._outbox.wake()
        if ChangeKind.SETTINGS in kinds:
            self._background(self._reload_settings())
        if ChangeKind.AUTOMATION in kinds:
            self._forget_automations()
        if kinds & _TEMPLATES:
            self._background(self._reload_templates())

    def _background(self, work: Awaitable[None]) -> None:
        # Keep a reference until done: the loop holds tasks only weakly.
        task = asyncio.get_running_loop().create_task(_logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Let reloads in flight finish (they only read)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _logged(work: Awaitable[None]) -> Coroutine[Any, Any, None]:
    async def run() -> None:
        try:
            await work
        except Exception:
            log.exception("reacting to a change failed")

    return run()
