"""`deskbell serve`: the service headless, so emails leave when every desktop is closed (T3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from services.api import Service

__all__ = ["serve_forever"]

log = logging.getLogger(__name__)


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
