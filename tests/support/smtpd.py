"""Real SMTP servers on loopback that misbehave for real (E6, E7, E9 tests).

`SmtpServer` runs aiosmtpd in its own thread; `CatcherHandler` collects what it accepts and
has knobs a test sets while the server runs: refuse a recipient, answer DATA with 421/451/552,
fail the next N messages, answer slowly, or drop the connection after DATA without a reply.
Faults happen on the wire, so the client under test sees exactly what a broken server sends.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services.mail.smtp import Security, SmtpSettings, SmtpTimeouts
from tests.support.tls import CertBundle

__all__ = ["CatcherHandler", "SmtpServer", "free_port", "settings_for"]


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class CatcherHandler:
    """An aiosmtpd handler that keeps what it accepts; every knob may change at run time."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> "550 5.1.1 ..."
    mail_reply: str | None = None  # answer to MAIL FROM instead of 250
    data_reply: str | None = None  # answer to the final "." instead of 250
    fail_next_n: int = 0  # the next N messages get `fail_reply` after DATA
    fail_reply: str = "451 4.3.0 Temporary failure, try again later"
    delay_data_s: float = 0.0
    drop_after_data: bool = False  # close the connection after DATA without any reply
    # A message counts as accepted only if the client is still there to read the 250, so
    # "accepted" is well defined when a test kills the client mid-transaction.
    accept_only_if_connected: bool = True

    messages: list[Message] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # MAIL, RCPT, DATA, RSET as received
    connections: int = 0
    _live: set[SMTP] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # aiosmtpd hooks (called in the server's thread).

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.commands.append("MAIL")
        if self.mail_reply is not None:
            return await self._answer(server, self.mail_reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.commands.append("RCPT")
        reply = self.rcpt_replies.get(address) or self.rcpt_replies.get(address.lower())
        if reply is not None:
            return await self._answer(server, reply)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("RSET")
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("DATA")
        if self.delay_data_s > 0:
            await asyncio.sleep(self.delay_data_s)
        if self.drop_after_data:
            return await self._drop(server)
        if self.fail_next_n > 0:
            self.fail_next_n -= 1
            return await self._answer(server, self.fail_reply)
        if self.data_reply is not None:
            return await self._answer(server, self.data_reply)
        if self.accept_only_if_connected and (
            server.transport is None or server.transport.is_closing()
        ):
            return "451 4.4.2 Client went away"
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
            number = len(self.messages)
        return f"250 2.0.0 OK queued as {number}"

    async def _answer(self, server: SMTP, reply: str) -> str:
        # A 421 means "closing the connection": a real server hangs up after saying it.
        if reply.startswith("421"):
            await server.push(reply)
            return await self._drop(server)
        return reply

    async def _drop(self, server: SMTP) -> str:
        if isinstance(server.transport, asyncio.WriteTransport):
            server.transport.abort()
        # connection_lost() cancels this handler; nothing more is ever written.
        await asyncio.Event().wait()
        return "421 unreachable"

    # Connection bookkeeping, used by _TrackingSMTP.

    def _connected(self, server: SMTP) -> None:
        with self._lock:
            self.connections += 1
            self._live.add(server)

    def _disconnected(self, server: SMTP) -> None:
        with self._lock:
            self._live.discard(server)

    def _open_transports(self) -> list[asyncio.BaseTransport]:
        with self._lock:
            return [s.transport for s in self._live if s.transport is not None]


class _TrackingSMTP(SMTP):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again for the same client
        super().connection_made(transport)
        if first:
            self.event_handler._connected(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler._disconnected(self)
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _TrackingSMTP(self.handler, **self.SMTP_kwargs)


def _authenticator(users: Mapping[str, str]) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            if users.get(login) == auth_data.password.decode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in a thread. `with SmtpServer() as s:` or `async with`.

    tls + implicit_tls=True: TLS from the first byte (port 465 style).
    tls + implicit_tls=False: plain greeting, STARTTLS offered and required (port 587 style).
    users: AUTH PLAIN/LOGIN accounts (offered only after TLS when there is TLS).
    stop() aborts every open client connection, like a crashed server; start() again listens
    on the same port with the same handler, like a server that came back.
    """

    def __init__(
        self,
        *,
        handler: CatcherHandler | None = None,
        tls: CertBundle | None = None,
        implicit_tls: bool = False,
        users: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.handler = handler if handler is not None else CatcherHandler()
        self.port = port if port is not None else free_port()
        self.host = "127.0.0.1"
        self._tls = tls
        self._implicit_tls = implicit_tls
        self._users = dict(users) if users is not None else None
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if self._tls is not None and self._implicit_tls:
            kwargs["ssl_context"] = self._tls.server_context()
        elif self._tls is not None:
            kwargs["tls_context"] = self._tls.server_context()
            kwargs["require_starttls"] = True
        if self._users is not None:
            kwargs["authenticator"] = _authenticator(self._users)
            kwargs["auth_require_tls"] = self._tls is not None
        controller = _Controller(self.handler, **kwargs)
        controller.start()
        self._controller = controller
        # start() made one connection of its own to check the server answers.
        with self.handler._lock:
            self.handler.connections = 0

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is None:
            return

        async def abort_all() -> None:
            for transport in self.handler._open_transports():
                if isinstance(transport, asyncio.WriteTransport):
                    transport.abort()
            for _ in range(3):  # let connection_lost() callbacks run
                await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(abort_all(), controller.loop).result(timeout=5)
        controller.stop()

    def client_context(self) -> ssl.SSLContext | None:
        return self._tls.client_context() if self._tls is not None else None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SmtpServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def settings_for(
    server: SmtpServer,
    *,
    trust_test_ca: bool = True,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 5.0,
) -> SmtpSettings:
    """Client settings matching `server`'s security; with the test CA unless told otherwise.
    Every step times out after `timeout_s` (RFC 5321's minutes would make a broken test hang)."""
    if server._tls is None:
        security = Security.NONE
    else:
        security = Security.TLS if server._implicit_tls else Security.STARTTLS
    cafile = str(server._tls.cafile) if server._tls is not None and trust_test_ca else None
    return SmtpSettings(
        host=server.host,
        port=server.port,
        security=security,
        username=username,
        password=password,
        timeouts=SmtpTimeouts.uniform(timeout_s),
        cafile=cafile,
    )
