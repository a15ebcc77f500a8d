"""SMTP transport of the email fallback (E6, E7, E9): one reused connection, one outcome per try.

`SmtpSender.send()` makes exactly one attempt and reports what the server said, per recipient,
as an `Outcome`; it never raises for network or SMTP trouble, so the durable outbox above it
decides alone what to retry and when. It never resends on its own: a message whose fate is
unknown (a drop after the final ".") is RETRY, and the outbox resends it with the same
Message-ID (E7).
"""

from __future__ import annotations

import asyncio
import ssl
import unicodedata
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType

import aiosmtplib
from aiosmtplib.email import parse_address

from services.domain.schedule import SmtpVerdict, classify_reply
from services.errors import InputError, MailServerError, MailServerUnreachableError

__all__ = [
    "Outcome",
    "Outgoing",
    "RecipientOutcome",
    "Security",
    "SmtpSender",
    "SmtpSettings",
    "SmtpVerdict",
]


class Security(StrEnum):
    STARTTLS = "starttls"  # port 587: plain greeting, then a mandatory upgrade
    TLS = "tls"  # port 465: TLS from the first byte
    NONE = "none"  # plain text: only for an explicitly chosen local relay (E9)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    cafile: str | None = None  # extra CA bundle; the system store is used either way

    def __post_init__(self) -> None:
        if not self.host or any(_is_control(c) or c.isspace() for c in self.host):
            raise InputError(f"Invalid SMTP host name: {self.host!r}")
        if not 0 < self.port < 65536:
            raise InputError(f"SMTP port must be between 1 and 65535, not {self.port}")
        if not isinstance(self.security, Security):
            raise InputError(f"Unknown SMTP security {self.security!r}")
        if self.timeout_s <= 0:
            raise InputError("The SMTP timeout must be positive")
        if self.username is not None and any(_is_control(c) for c in self.username):
            raise InputError("The SMTP user name must not contain line breaks")


@dataclass(frozen=True)
class Outgoing:
    key: int  # the outbox row's id, echoed in the Outcome
    sender: str  # envelope sender (MAIL FROM)
    recipients: tuple[str, ...]  # envelope recipients (RCPT TO)
    data: bytes  # the whole message, headers included, Message-ID fixed at queue time


@dataclass(frozen=True)
class RecipientOutcome:
    address: str
    verdict: SmtpVerdict
    code: int | None  # None: no server reply (refused locally, or the connection failed)
    reply: str


@dataclass(frozen=True)
class Outcome:
    """One attempt's result. `verdict` sums up the recipients: SENT only if all were accepted,
    else RETRY if any may still succeed, else FAILED. Act per recipient: never resend to
    `sent_to` (E7)."""

    key: int
    verdict: SmtpVerdict
    code: int | None
    reply: str
    recipients: tuple[RecipientOutcome, ...]

    @property
    def sent_to(self) -> tuple[str, ...]:
        return self._addresses(SmtpVerdict.SENT)

    @property
    def retry_to(self) -> tuple[str, ...]:
        return self._addresses(SmtpVerdict.RETRY)

    @property
    def failed_to(self) -> tuple[str, ...]:
        return self._addresses(SmtpVerdict.FAILED)

    def _addresses(self, verdict: SmtpVerdict) -> tuple[str, ...]:
        return tuple(r.address for r in self.recipients if r.verdict is verdict)


def _is_control(char: str) -> bool:
    # Cc covers CR, LF, NUL, NEL; Zl/Zp are U+2028/U+2029: every way to break a command line.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def _address_problem(address: str) -> str | None:
    """Why `address` must not reach an SMTP command line (E11), or None if it may."""
    if not address.strip():
        return "is empty"
    if any(_is_control(c) for c in address):
        return "contains a line break or control character"
    if any(c in "<>" or c.isspace() for c in address):
        return "contains a space, < or >"
    if "@" not in address:
        return "has no @"
    try:
        # What aiosmtplib would put on the wire must be exactly what we were given.
        if parse_address(address) != address:
            return "is not a bare address"
    except ValueError:
        return "cannot be sent on an SMTP command line"
    return None


def _summarise(key: int, recipients: tuple[RecipientOutcome, ...]) -> Outcome:
    for verdict in (SmtpVerdict.RETRY, SmtpVerdict.FAILED, SmtpVerdict.SENT):
        first = next((r for r in recipients if r.verdict is verdict), None)
        if first is not None:
            return Outcome(key, verdict, first.code, first.reply, recipients)
    return Outcome(key, SmtpVerdict.FAILED, None, "not sent: no recipients", recipients)


class _Trouble(Exception):
    """A failure already put into words for a person; `code` is the server's, if it spoke."""

    def __init__(self, reply: str, *, code: int | None = None, transient: bool = True) -> None:
        super().__init__(reply)
        self.reply = reply
        self.code = code
        self.transient = transient


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _abort(transport: asyncio.BaseTransport | None) -> None:
    # close() on a TLS transport waits for the peer's close_notify; abort() frees the socket.
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()


class SmtpSender:
    """One SMTP connection reused for many emails (E9), opened lazily on the first send.

    `async with SmtpSender(settings=...) as sender: outcome = await sender.send(item)`.
    Calls are serialised: one transaction at a time on the one connection.
    """

    def __init__(self, *, settings: SmtpSettings, local_hostname: str | None = None) -> None:
        self.settings = settings
        self._local_hostname = local_hostname
        self._smtp: aiosmtplib.SMTP | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._needs_rset = False
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def __aenter__(self) -> SmtpSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Say QUIT if the server still listens; close the connection either way."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is None or not smtp.is_connected:
                return
            transport = smtp.transport
            try:
                await smtp.quit(timeout=min(self.settings.timeout_s, 5.0))
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
            finally:
                # After QUIT nothing is left to protect: close the socket now instead of
                # waiting for a TLS close_notify that the event loop may not live to see.
                _abort(transport)
                await asyncio.sleep(0)

    async def check(self) -> str:
        """The "test connection" button: connect, EHLO, log in; the server's greeting.

        Raises MailServerUnreachableError (no answer, refused, timed out) or MailServerError
        (TLS certificate refused, login refused, no AUTH offered).
        """
        async with self._lock:
            self._discard()
            try:
                greeting = await self._connect()
            except _Trouble as trouble:
                if trouble.transient:
                    raise MailServerUnreachableError(trouble.reply) from trouble
                raise MailServerError(trouble.reply) from trouble
            if self.settings.username is not None:
                greeting += f" (logged in as {self.settings.username})"
            return greeting

    async def send(self, item: Outgoing) -> Outcome:
        """One attempt to hand `item` to the server; trouble becomes the Outcome, not a raise."""
        async with self._lock:
            try:
                return await self._send(item)
            except asyncio.CancelledError:
                # Cancelled mid-transaction: the connection's state is unknown, drop it.
                self._discard()
                raise

    async def _send(self, item: Outgoing) -> Outcome:
        sender_problem = _address_problem(item.sender)
        if sender_problem is not None:
            reply = f"not sent: the sender address {sender_problem}"
            return _summarise(
                item.key,
                tuple(
                    RecipientOutcome(r, SmtpVerdict.FAILED, None, reply) for r in item.recipients
                ),
            )
        results: dict[str, RecipientOutcome] = {}
        valid: list[str] = []
        for address in item.recipients:
            problem = _address_problem(address)
            if problem is not None:
                reply = f"not sent: the address {problem}"
                results[address] = RecipientOutcome(address, SmtpVerdict.FAILED, None, reply)
            elif address not in valid:
                valid.append(address)

        if valid:
            try:
                await self._transaction(item, valid, results)
            except _Trouble as trouble:
                verdict = (
                    SmtpVerdict.RETRY if trouble.code is None else classify_reply(trouble.code)
                )
                for address in valid:
                    results.setdefault(
                        address, RecipientOutcome(address, verdict, trouble.code, trouble.reply)
                    )
        return _summarise(item.key, tuple(results[a] for a in dict.fromkeys(item.recipients)))

    async def _transaction(
        self, item: Outgoing, valid: list[str], results: dict[str, RecipientOutcome]
    ) -> None:
        """MAIL, RCPT per recipient, DATA. Fills `results`; raises _Trouble for the rest."""
        reused = self.connected
        smtp = await self._ready()
        timeout = self.settings.timeout_s

        options, encoding, needs_utf8 = self._mail_options(smtp, item, valid)
        if needs_utf8 and encoding == "ascii":
            reply = "not sent: the address is not ASCII and the server does not offer SMTPUTF8"
            if not item.sender.isascii():
                raise _Trouble(reply.replace("address", "sender address"), code=None)
            for address in [a for a in valid if not a.isascii()]:
                results[address] = RecipientOutcome(address, SmtpVerdict.FAILED, None, reply)
                valid.remove(address)
            if not valid:
                return

        self._needs_rset = True  # until DATA completes, an envelope may be open on the server
        try:
            await smtp.mail(item.sender, options=options, encoding=encoding)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise _Trouble("server closed the connection after MAIL FROM") from None
            # The reused connection had died while idle; nothing was sent yet, so a fresh
            # connection is still the same single attempt.
            self._discard()
            smtp = await self._ready()
            self._needs_rset = True
            await self._command(smtp.mail(item.sender, options=options, encoding=encoding), "MAIL")
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._trouble(exc, after="MAIL FROM") from exc

        accepted: list[str] = []
        for address in valid:
            try:
                await smtp.rcpt(address, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as refused:
                results[address] = RecipientOutcome(
                    address, classify_reply(refused.code), refused.code, refused.message
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise self._trouble(exc, after="RCPT TO") from exc
            else:
                accepted.append(address)
        if not accepted:
            return

        response = await self._command(smtp.data(item.data, timeout=timeout), "DATA")
        self._needs_rset = False
        for address in accepted:
            results[address] = RecipientOutcome(
                address, classify_reply(response.code), response.code, response.message
            )

    def _mail_options(
        self, smtp: aiosmtplib.SMTP, item: Outgoing, valid: list[str]
    ) -> tuple[list[str], str, bool]:
        options: list[str] = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(item.data)}")
        if not item.data.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        needs_utf8 = not item.sender.isascii() or not all(a.isascii() for a in valid)
        if needs_utf8 and smtp.supports_extension("smtputf8"):
            options.append("SMTPUTF8")
            return options, "utf-8", True
        return options, "ascii", needs_utf8

    async def _command(
        self, command: Awaitable[aiosmtplib.SMTPResponse], name: str
    ) -> aiosmtplib.SMTPResponse:
        try:
            response = await command
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._trouble(exc, after=name) from exc
        return response

    async def _ready(self) -> aiosmtplib.SMTP:
        """The open connection, reset after an unfinished transaction, or a new one."""
        if self._smtp is not None and self._smtp.is_connected:
            if not self._needs_rset:
                return self._smtp
            try:
                await self._smtp.rset()
            except (aiosmtplib.SMTPException, OSError):
                self._discard()  # a server that cannot reset gets a fresh connection
            else:
                self._needs_rset = False
                return self._smtp
        self._discard()
        await self._connect()
        assert self._smtp is not None
        return self._smtp

    async def _connect(self) -> str:
        """Open, upgrade, EHLO and log in; the greeting as "220 text". Raises _Trouble."""
        s = self.settings
        try:
            if s.security is not Security.NONE and self._tls_context is None:
                self._tls_context = ssl.create_default_context(cafile=s.cafile)
            smtp = aiosmtplib.SMTP(
                hostname=s.host,
                port=s.port,
                local_hostname=self._local_hostname,
                timeout=s.timeout_s,
                use_tls=s.security is Security.TLS,
                # Explicit True: the default None upgrades only if offered, which an attacker
                # can strip from the EHLO answer.
                start_tls=s.security is Security.STARTTLS,
                validate_certs=True,
                tls_context=self._tls_context,
            )
            greeting = await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._trouble(exc, after=None) from exc
        try:
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
            if s.username is not None:
                if not smtp.supports_extension("auth"):
                    raise _Trouble(
                        f"{s.host} offers no login (AUTH) on this connection: choose "
                        "STARTTLS or TLS, or leave the user name empty for a local relay",
                        transient=False,
                    )
                await smtp.login(s.username, s.password or "")
        except _Trouble:
            smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise self._trouble(exc, after="login") from exc
        self._smtp = smtp
        self._needs_rset = False
        return f"{greeting.code} {greeting.message}"

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._needs_rset = False
        if smtp is not None:
            transport = smtp.transport
            smtp.close()
            _abort(transport)  # its state is unknown: no goodbye, no half-open socket

    def _trouble(self, exc: BaseException, *, after: str | None) -> _Trouble:
        """Put a failure into words a help-desk admin can act on."""
        s = self.settings
        where = f"{s.host}:{s.port}"
        cert = _cert_error(exc)
        if cert is not None:
            return _Trouble(
                f"TLS certificate of {where} not accepted: {cert.verify_message or cert}",
                transient=False,
            )
        if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
            return _Trouble(f"TLS with {where} failed: {exc}", transient=False)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return _Trouble(
                f"login refused by {where}: {exc.code} {exc.message}",
                transient=False,
            )
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
            step = "connecting" if after is None else f"waiting for the answer to {after}"
            return _Trouble(f"timed out after {s.timeout_s:g} s {step} ({where})")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            if after in (None, "login"):  # trouble with the server, not with this message
                return _Trouble(f"{where} answered {exc.code} {exc.message}")
            return _Trouble(exc.message, code=exc.code)
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            cause = exc.__cause__
            if isinstance(cause, ConnectionRefusedError):
                return _Trouble(f"connection refused by {where}")
            if isinstance(cause, aiosmtplib.SMTPServerDisconnected):
                return _Trouble(f"server {where} closed the connection before its greeting")
            return _Trouble(f"cannot connect to {where}: {cause or exc}")
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError):
            step = "" if after is None else f" after {after}"
            return _Trouble(f"server closed the connection{step} ({where})")
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            return _Trouble(f"{where}: {exc}", transient=False)
        if isinstance(exc, FileNotFoundError) and exc.filename == s.cafile:
            return _Trouble(f"cannot read the CA file {s.cafile}", transient=False)
        return _Trouble(f"{where}: {exc}")
