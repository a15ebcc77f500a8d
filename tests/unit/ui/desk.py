"""A real window over a real Service on a temporary SQLite file, for the window tests."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import shiboken6
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from services.api import PersonInfo, Service, TeamAccount, TeamSync
from services.clock import ManualClock
from tests.support.world import World, open_service, seed
from tests.unit.ui.fake_sync import FakeSync
from tests.unit.ui.fakes import RecordingPlayer
from ui.bridge import ServiceBridge
from ui.platform.notify import Notifier
from ui.platform.sound import Pinger
from ui.tasks import Tasks
from ui.theme import LIGHT
from ui.windows.main_window import MainWindow

__all__ = ["Desk", "open_desk", "until", "with_desk"]


@dataclass
class Desk:
    service: Service
    world: World
    clock: ManualClock
    me: PersonInfo
    bridge: ServiceBridge
    window: MainWindow
    player: RecordingPlayer
    tasks: Tasks

    async def conversation(self, number: int, *, external: bool = False) -> int:
        item = await self.service.item(number)
        return item.external_conversation_id if external else item.internal_conversation_id

    async def close(self) -> None:
        self.bridge.stop()
        await self.window.notifications.aclose()
        self.window.hide()
        await self.tasks.drain()
        await self.service.close()
        # Destroyed here, in the GUI thread: left to the garbage collector, a window in
        # reference cycles (its signal connections) can be destroyed in a database worker
        # thread ("Timers cannot be stopped from another thread", then a crash).
        shiboken6.delete(self.window)
        gc.collect()


async def until(condition: Callable[[], object], *, within: float = 60.0) -> None:
    """Let the Qt loop run until `condition()` is truthy (fails after `within` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def open_desk(
    tmp_path: Path,
    *,
    activate: bool = True,
    system_notifiers: list[Callable[[], Notifier]] | None = None,
    team_account: TeamAccount | None = None,
    connection: TeamSync | FakeSync | None = None,
) -> AsyncIterator[Desk]:
    clock = ManualClock()
    service = await open_service(tmp_path, clock=clock)
    world = await seed(service)
    await service.start()
    me = await service.person("ann@example.com")
    tasks = Tasks()
    bridge = ServiceBridge(service=service, me=me, tasks=tasks)
    await bridge.start()
    player = RecordingPlayer()
    window = MainWindow(
        service=service,
        bridge=bridge,
        theme=LIGHT,
        tasks=tasks,
        now=clock.now,
        clock=clock,
        pinger=Pinger(player=player, clock=clock),
        system_notifiers=system_notifiers,
        team_account=team_account,
        connection=connection,
    )
    window.show()
    if activate:
        window.activateWindow()
        await until(window.isActiveWindow)
    await window.load()
    desk = Desk(service, world, clock, me, bridge, window, player, tasks)
    try:
        yield desk
    finally:
        await desk.close()
        QApplication.processEvents()


def with_desk(
    test: Callable[[Desk, QtBot], Awaitable[None]],
) -> Callable[[Path, QtBot], Awaitable[None]]:
    """Run `test(desk, qtbot)` with a desk opened and closed inside the test's own loop
    (an async fixture's teardown would run where the qasync loop is not running)."""

    async def run(tmp_path: Path, qtbot: QtBot) -> None:
        async with open_desk(tmp_path) as desk:
            await test(desk, qtbot)

    run.__name__ = test.__name__
    run.__qualname__ = test.__qualname__
    run.__doc__ = test.__doc__
    return run
