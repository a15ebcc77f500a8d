"""Widget tests run on Qt's offscreen platform: no display needed.

`async def` tests run inside a qasync loop (NOTES.md): Qt events keep flowing while a test
awaits the service, so signals, timers and the change feed all work as in the app.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.api import Service
from services.clock import ManualClock
from tests.support.qt_loop import pytest_asyncio_loop_factories
from tests.support.world import World, open_service, seed

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

__all__ = ["pytest_asyncio_loop_factories"]  # the hook, for pytest to find here


@pytest.fixture(autouse=True)
def _collect_in_gui_thread() -> Iterator[None]:
    """Collect each test's windows here, in the GUI thread.

    Left to the garbage collector, a window in reference cycles (its signal connections) is
    destroyed in whatever thread collects next (a database worker running the next test's
    migrations), and Qt warns "Timers cannot be stopped from another thread".
    """
    yield
    gc.collect()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Service, World, ManualClock]]:
    """A real Service on a SQLite file, seeded (Ann, Bob, Carl, item #1), with a manual clock."""
    clock = ManualClock()
    service = await open_service(tmp_path, clock=clock)
    try:
        yield service, await seed(service), clock
    finally:
        await service.close()
