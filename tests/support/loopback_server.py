"""The team server's real application on a loopback port that a test can stop and start
again on the same port (a server going away and coming back, issue 11)."""

from __future__ import annotations

from aiohttp import web

from services.api import Service
from services.server.app import build_app

__all__ = ["LoopbackServer"]


class LoopbackServer:
    def __init__(self, service: Service) -> None:
        self._service = service
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve on the port of the last start (a free one the first time)."""
        runner = web.AppRunner(build_app(self._service), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Every connection ends; the port refuses until `start()`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
