"""A real team server for desktop tests: `services.server.app.build_app` over a real Service on
a SQLite file, on a loopback port of the test's own event loop (plain http, or https with a
certificate from a throwaway authority this machine does not trust), its email going to a
real aiosmtpd on loopback. Ann (an administrator) and Bob (an agent) have the password `PW`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from services.api import LOCAL_OPERATOR, Service
from services.clock import ManualClock
from services.server.app import build_app
from tests.support.bounces import use_smtp_server
from tests.support.smtpd import SmtpServer
from tests.support.tls import CertBundle, make_certificates

__all__ = ["ANN", "BOB", "PW", "TeamServer", "reset_code", "team_server"]

ANN, BOB = "ann@example.com", "bob@example.com"
PW = "correct horse battery"


@dataclass
class TeamServer:
    url: str
    service: Service
    clock: ManualClock
    smtp: SmtpServer | None
    certificates: CertBundle | None


@contextlib.asynccontextmanager
async def team_server(
    folder: Path, *, tls: bool = False, smtp: SmtpServer | None = None
) -> AsyncIterator[TeamServer]:
    clock = ManualClock()
    service = await Service.open(data_dir=folder / "server", clock=clock)
    runner: web.AppRunner | None = None
    try:
        await service.add_person(email=ANN, name="Ann Agent", is_admin=True)
        await service.add_person(email=BOB, name="Bob Agent")
        for address in (ANN, BOB):
            await service.set_password(acting=LOCAL_OPERATOR, email=address, password=PW)
        if smtp is not None:
            await use_smtp_server(service, smtp)
        bundle = make_certificates(directory=folder / "tls") if tls else None
        runner = web.AppRunner(build_app(service), access_log=None, handle_signals=False)
        await runner.setup()
        context = bundle.server_context() if bundle is not None else None
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        host, port = runner.addresses[0][:2]
        scheme = "https" if bundle is not None else "http"
        yield TeamServer(f"{scheme}://{host}:{port}", service, clock, smtp, bundle)
    finally:
        if runner is not None:
            await runner.cleanup()
        await service.close()


async def reset_code(server: TeamServer, to: str) -> str:
    """Send what the server queued, and read the code from the reset email aiosmtpd caught."""
    assert server.smtp is not None
    await server.service.outbox.flush()
    for message in reversed(server.smtp.handler.messages):
        if to in str(message["To"]):
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            found = re.search(r"\b(\d{8})\b", body.get_content())
            assert found, body.get_content()
            return found.group(1)
    raise AssertionError(f"no email to {to} was caught")
