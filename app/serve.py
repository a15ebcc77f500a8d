"""`deskbell serve`: the service headless, so emails leave when every desktop is closed (T3).

It never gives up on its database: while the file is locked by another program, on a full
disk, read-only or unreadable, it logs one line per change of reason and tries again, at start
and while running (the service's own loops do the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

from services.api import Service
from services.errors import StoreError
from services.retry_log import RetryLog

__all__ = ["open_when_ready", "serve_forever"]

log = logging.getLogger(__name__)

OPEN_RETRY_MAX_S = 30.0


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: see serve_forever
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def open_when_ready(open_service: Callable[[], Awaitable[Service]]) -> Service | None:
    """The opened service, once its database can be used; None if stopped while waiting."""
    stop = asyncio.Event()
    retry = RetryLog(log, "opening the database")
    delay = 1.0
    with _stop_on_signals(stop):
        while True:
            try:
                service = await open_service()
            except StoreError as exc:
                retry.failed(exc)
            else:
                retry.succeeded()
                if not stop.is_set():
                    return service
                await service.close()  # stopped while the open waited for the database
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            if stop.is_set():
                return None
            delay = min(delay * 2, OPEN_RETRY_MAX_S)


async def serve_forever(service: Service) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers in asyncio: Ctrl+C still raises KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await service.start()
    log.info("deskbell service running; stop with Ctrl+C")
    try:
        await stop.wait()
    finally:
        log.info("stopping")
