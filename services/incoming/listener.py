"""An SMTP listener for `deskbell serve` (I1): mail forwarded to it is processed like fetched mail.

aiosmtpd's server runs on the service's own event loop (no Controller thread), so each
accepted mail goes straight into `Service.receive_mail`. The mail is accepted (250) once it
is logged, whatever it holds: a mail that cannot be processed is logged as ignored, with the
reason (I7). Only a database that cannot take even that row answers 451, so the sending
server tries again later; a mail SMTP itself forbids (too large, a line over 998
characters) gets aiosmtpd's permanent 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from services.errors import InputError, StoreError, quoted

if TYPE_CHECKING:
    # aiosmtpd is imported when a listener starts: `deskbell` (and the app) parses its command
    # line through this module but rarely listens.
    from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["MAX_MAIL_BYTES", "SmtpListener", "parse_listen_address"]

log = logging.getLogger(__name__)

MAX_MAIL_BYTES = 30_000_000  # beyond this the sender gets 552 (a huge attachment, or abuse)


def parse_listen_address(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) for `--smtp-listen`; InputError if malformed.
    Port 0 lets the system pick a free one (the listener says which)."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"{quoted(value)} is not HOST:PORT (for example 127.0.0.1:2525)")
    return host, int(port)


class _Handler:
    def __init__(self, receive: Callable[[bytes], Awaitable[object]]) -> None:
        self._receive = receive

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw or "").encode("utf-8", "replace")
        try:
            result = await self._receive(data)
        except StoreError as exc:  # a locked or full database: one line, the sender retries
            log.error("an incoming mail over SMTP could not be stored: %s", exc)
            return "451 4.3.0 Could not store the mail; try again later"
        except Exception:  # not even the log row could be written: let the sender retry (I7)
            log.exception("an incoming mail over SMTP could not be processed")
            return "451 4.3.0 Could not store the mail; try again later"
        log.info("SMTP listener: %s", result)
        return "250 2.0.0 OK"


class SmtpListener:
    """Accepts mail on HOST:PORT and feeds every message to `receive`."""

    def __init__(
        self, *, host: str, port: int, receive: Callable[[bytes], Awaitable[object]]
    ) -> None:
        self.host = host
        self.port = port
        self._handler = _Handler(receive)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()

        def factory() -> Any:
            return SMTP(self._handler, data_size_limit=MAX_MAIL_BYTES, hostname="deskbell")

        self._server = await loop.create_server(factory, host=self.host, port=self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])  # port 0 picks a free one
        log.info("SMTP listener on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
