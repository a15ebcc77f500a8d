"""SMTP transport of the email fallback (E6, E7, E9): one reused connection, one outcome per try.

`SmtpSender.send()` makes exactly one attempt and reports what the server said, per recipient,
as an `Outcome`; it never raises for network or SMTP trouble, so the durable outbox above it
decides alone what to retry and when. It never resends on its own: a message whose fate is
unknown (a drop after the final ".") is RETRY, and the outbox resends it with the same
Message-ID (E7).

Each step waits as long as RFC 5321 §4.5.3.2 gives a server (`SmtpTimeouts`): a slow but
correct server is never abandoned while it may still accept, which would send a copy per
retry. Before each step a caller's `StepGuard` may hold it (the outbox makes sure its claim
on the email outlasts the step, and that the previous acceptance is on disk) or veto it.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
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
    "SmtpTimeouts",
    "SmtpVerdict",
    "StepGuard",
]

# Called before each step of a transaction with its name and timeout; raising abandons the
# transaction there (nothing after it is sent) and propagates out of `send()`.
StepGuard = Callable[[str, float], Awaitable[None]]


class Security(StrEnum):
    STARTTLS = "starttls"  # port 587: plain greeting, then a mandatory upgrade
    TLS = "tls"  # port 465: TLS from the first byte
    NONE = "none"  # plain text: only for an explicitly chosen local relay (E9)


@dataclass(frozen=True)
class SmtpTimeouts:
    """Seconds to wait for each answer: RFC 5321 §4.5.3.2's minimums by default.

    `command` covers what the RFC leaves unnamed (EHLO, STARTTLS, AUTH, RSET). `data_block`
    is how long sending the content may go without progress.
    """

    greeting: float = 300.0
    command: float = 300.0
    mail: float = 300.0
    rcpt: float = 300.0
    data_init: float = 120.0
    data_block: float = 180.0
    data_term: float = 600.0
    quit: float = 5.0  # after QUIT nothing is left to protect

    def __post_init__(self) -> None:
        if min(getattr(self, f.name) for f in fields(self)) <= 0:
            raise InputError("SMTP timeouts must be positive")

    @classmethod
    def uniform(cls, seconds: float) -> SmtpTimeouts:
        """The same timeout for every step (an interactive check that sends nothing)."""
        return cls(**{f.name: seconds for f in fields(cls)})

    def capped(self, seconds: float) -> SmtpTimeouts:
        return SmtpTimeouts(**{f.name: min(getattr(self, f.name), seconds) for f in fields(self)})

    @property
    def login(self) -> float:
        """The longest the connection phase may take: greeting, EHLO, STARTTLS, EHLO, AUTH."""
        return self.greeting + 4 * self.command


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeouts: SmtpTimeouts = field(default_factory=SmtpTimeouts)
    cafile: str | None = None  # extra CA bundle; the system store is used either way

    def __post_init__(self) -> None:
        if not self.host or _CONTROL.search(self.host) or any(c.isspace() for c in self.host):
            raise InputError(f"Invalid SMTP host name: {self.host!r}")
        if not 0 < self.port < 65536:
            raise InputError(f"SMTP port must be between 1 and 65535, not {self.port}")
        if not isinstance(self.security, Security):
            raise InputError(f"Unknown SMTP security {self.security!r}")
        if self.username is not None and _CONTROL.search(self.username):
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


# Cc is U+0000-U+001F and U+007F-U+009F (CR, LF, NUL, NEL...); U+2028/U+2029 are Zl/Zp:
# every way to break a command line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE_OR_BRACKET = re.compile(r"[<>\s]")
# RFC 5321's dot-atom addresses, which aiosmtplib puts on the wire unchanged: no need to ask it.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _address_problem(address: str) -> str | None:
    """Why `address` must not reach an SMTP command line (E11), or None if it may."""
    if not address.strip():
        return "is empty"
    if _CONTROL.search(address):
        return "contains a line break or control character"
    if _SPACE_OR_BRACKET.search(address):
        return "contains a space, < or >"
    if "@" not in address:
        return "has no @"
    if _PLAIN_ADDRESS.fullmatch(address):
        return None
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
    """A failure already put into words for a person; `code` is the server's, if it spoke.
    `of_server`: the server could not be reached or used (not this message's fault)."""

    def __init__(
        self,
        reply: str,
        *,
        code: int | None = None,
        transient: bool = True,
        of_server: bool = False,
    ) -> None:
        super().__init__(reply)
        self.reply = reply
        self.code = code
        self.transient = transient
        self.of_server = of_server


_LINE_END = re.compile(rb"\r\n|\r|\n")
_DOT_AT_LINE_START = re.compile(rb"(?m)^\.")


def _dot_stuffed(data: bytes) -> bytes:
    """The content as DATA carries it (RFC 5321 §4.5.2): CRLF lines, leading dots doubled."""
    text = _LINE_END.sub(b"\r\n", data)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return _DOT_AT_LINE_START.sub(b"..", text)


async def _no_guard(step: str, timeout_s: float) -> None:
    return None


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


CHECK_TIMEOUT_S = 30.0  # "test connection" sends nothing: a person is waiting for it


class SmtpSender:
    """One SMTP connection reused for many emails (E9), opened lazily on the first send.

    `async with SmtpSender(settings=...) as sender: outcome = await sender.send(item)`.
    Calls are serialised: one transaction at a time on the one connection. `trouble` is
    why the server could not be used on the last try, or None once it answered again.
    """

    def __init__(self, *, settings: SmtpSettings, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.trouble: str | None = None
        self._local_hostname = local_hostname
        self._smtp: aiosmtplib.SMTP | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._needs_rset = False
        self._in_data = False  # after 354, until the final reply
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
                await smtp.quit(timeout=self.settings.timeouts.quit)
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
                greeting = await self._connect(self.settings.timeouts.capped(CHECK_TIMEOUT_S))
            except _Trouble as trouble:
                if trouble.transient:
                    raise MailServerUnreachableError(trouble.reply) from trouble
                raise MailServerError(trouble.reply) from trouble
            if self.settings.username is not None:
                greeting += f" (logged in as {self.settings.username})"
            return greeting

    async def send(self, item: Outgoing, *, guard: StepGuard = _no_guard) -> Outcome:
        """One attempt to hand `item` to the server; trouble becomes the Outcome, not a raise.

        Only `guard` raising (or a cancellation) leaves by an exception: the transaction is
        abandoned before the step it was asked about, and the connection dropped.
        """
        async with self._lock:
            try:
                return await self._send(item, guard)
            except asyncio.CancelledError:
                self._discard()  # cancelled mid-command: the connection's state is unknown
                raise
            except BaseException:
                if self._in_data:
                    self._discard()  # vetoed inside DATA: no way back to a clean state
                raise  # vetoed between commands: an open envelope is reset before the next
            finally:
                self._in_data = False

    async def _send(self, item: Outgoing, guard: StepGuard) -> Outcome:
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
                await self._transaction(item, valid, results, guard)
            except _Trouble as trouble:
                if trouble.of_server:
                    self.trouble = trouble.reply
                verdict = (
                    SmtpVerdict.RETRY if trouble.code is None else classify_reply(trouble.code)
                )
                for address in valid:
                    results.setdefault(
                        address, RecipientOutcome(address, verdict, trouble.code, trouble.reply)
                    )
        return _summarise(item.key, tuple(results[a] for a in dict.fromkeys(item.recipients)))

    async def _transaction(
        self,
        item: Outgoing,
        valid: list[str],
        results: dict[str, RecipientOutcome],
        guard: StepGuard,
    ) -> None:
        """MAIL, RCPT per recipient, DATA. Fills `results`; raises _Trouble for the rest."""
        t = self.settings.timeouts
        reused = self.connected
        smtp = await self._ready(guard)

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

        await guard("MAIL", t.mail)
        self._needs_rset = True  # until DATA completes, an envelope may be open on the server
        try:
            await smtp.mail(item.sender, options=options, encoding=encoding, timeout=t.mail)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise _Trouble(
                    "server closed the connection after MAIL FROM", of_server=True
                ) from None
            # The reused connection had died while idle; nothing was sent yet, so a fresh
            # connection is still the same single attempt.
            self._discard()
            smtp = await self._ready(guard)
            await guard("MAIL", t.mail)
            self._needs_rset = True
            await self._command(
                smtp.mail(item.sender, options=options, encoding=encoding, timeout=t.mail),
                "MAIL FROM",
                t.mail,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._trouble(exc, after="MAIL FROM", timeout=t.mail) from exc
        self.trouble = None  # the server answered: whatever happens next is about this email

        accepted: list[str] = []
        for address in valid:
            await guard("RCPT", t.rcpt)
            try:
                await smtp.rcpt(address, encoding=encoding, timeout=t.rcpt)
            except aiosmtplib.SMTPRecipientRefused as refused:
                results[address] = RecipientOutcome(
                    address, classify_reply(refused.code), refused.code, refused.message
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise self._trouble(exc, after="RCPT TO", timeout=t.rcpt) from exc
            else:
                accepted.append(address)
        if not accepted:
            return

        response = await self._data(smtp, item.data, guard)
        self._needs_rset = False
        for address in accepted:
            results[address] = RecipientOutcome(
                address, classify_reply(response.code), response.code, response.message
            )

    async def _data(
        self, smtp: aiosmtplib.SMTP, data: bytes, guard: StepGuard
    ) -> aiosmtplib.SMTPResponse:
        """DATA with RFC 5321's three timeouts: 354 within `data_init`, the content sent with
        progress at least every `data_block`, the final reply within `data_term`."""
        t = self.settings.timeouts
        await guard("DATA", t.data_init)
        start = await self._command(
            smtp.execute_command(b"DATA", timeout=t.data_init), "DATA", t.data_init
        )
        if start.code != 354:
            raise _Trouble(start.message, code=start.code)
        self._in_data = True
        protocol, transport = smtp.protocol, smtp.transport
        if protocol is None or not isinstance(transport, asyncio.WriteTransport):
            raise _Trouble("server closed the connection after DATA", of_server=True)
        await guard(".", t.data_block + t.data_term)
        try:
            # Content and final dot in one write (one segment for a small email). The reply
            # is awaited from before the first yield, so an early answer cannot be missed.
            protocol.write(_dot_stuffed(data) + b".\r\n")
            reply = asyncio.ensure_future(protocol.read_response(timeout=None))
            try:
                await self._sent(transport, guard)
                async with asyncio.timeout(t.data_term):
                    response = await reply
            finally:
                reply.cancel()
        except _Trouble:
            smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timed out or cut off mid-reply: the connection cannot be trusted to pair replies.
            smtp.close()
            raise self._trouble(exc, after="DATA", timeout=t.data_term) from exc
        if response.code == 421:
            smtp.close()
        if response.code != 250:
            raise _Trouble(response.message, code=response.code)
        return response

    async def _sent(self, transport: asyncio.WriteTransport, guard: StepGuard) -> None:
        """Wait until the content has left, failing after `data_block` with no progress."""
        t = self.settings.timeouts
        loop = asyncio.get_running_loop()
        left, since = transport.get_write_buffer_size(), loop.time()
        while left and not transport.is_closing():
            await asyncio.sleep(0.05)
            now_left = transport.get_write_buffer_size()
            if now_left < left:
                left, since = now_left, loop.time()
                await guard(".", t.data_block + t.data_term)
            elif loop.time() - since > t.data_block:
                where = f"{self.settings.host}:{self.settings.port}"
                raise _Trouble(
                    f"timed out after {t.data_block:g} s sending the message ({where})",
                    of_server=True,
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
        self, command: Awaitable[aiosmtplib.SMTPResponse], name: str, timeout_s: float
    ) -> aiosmtplib.SMTPResponse:
        try:
            response = await command
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._trouble(exc, after=name, timeout=timeout_s) from exc
        return response

    async def _ready(self, guard: StepGuard) -> aiosmtplib.SMTP:
        """The open connection, reset after an unfinished transaction, or a new one."""
        timeouts = self.settings.timeouts
        if self._smtp is not None and self._smtp.is_connected:
            if not self._needs_rset:
                return self._smtp
            await guard("RSET", timeouts.command)
            try:
                await self._smtp.rset(timeout=timeouts.command)
            except (aiosmtplib.SMTPException, OSError):
                self._discard()  # a server that cannot reset gets a fresh connection
            else:
                self._needs_rset = False
                return self._smtp
        self._discard()
        await guard("connect", timeouts.login)
        await self._connect(timeouts)
        assert self._smtp is not None
        return self._smtp

    async def _connect(self, timeouts: SmtpTimeouts) -> str:
        """Open, upgrade, EHLO and log in; the greeting as "220 text". Raises _Trouble."""
        s = self.settings
        try:
            if s.security is not Security.NONE and self._tls_context is None:
                self._tls_context = ssl.create_default_context(cafile=s.cafile)
            smtp = aiosmtplib.SMTP(
                hostname=s.host,
                port=s.port,
                local_hostname=self._local_hostname,
                timeout=timeouts.greeting,  # connect, greeting, and the STARTTLS upgrade
                use_tls=s.security is Security.TLS,
                # Explicit True: the default None upgrades only if offered, which an attacker
                # can strip from the EHLO answer.
                start_tls=s.security is Security.STARTTLS,
                validate_certs=True,
                tls_context=self._tls_context,
            )
            greeting = await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            trouble = self._trouble(exc, after=None, timeout=timeouts.greeting)
            self.trouble = trouble.reply
            raise trouble from exc
        try:
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo(timeout=timeouts.command)
            if s.username is not None:
                if not smtp.supports_extension("auth"):
                    raise _Trouble(
                        f"{s.host} offers no login (AUTH) on this connection: choose "
                        "STARTTLS or TLS, or leave the user name empty for a local relay",
                        transient=False,
                        of_server=True,
                    )
                await smtp.login(s.username, s.password or "", timeout=timeouts.command)
        except _Trouble as refused:
            smtp.close()
            self.trouble = refused.reply
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            failed = self._trouble(exc, after="login", timeout=timeouts.command)
            self.trouble = failed.reply
            raise failed from exc
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

    def _trouble(self, exc: BaseException, *, after: str | None, timeout: float) -> _Trouble:
        """Put a failure into words a help-desk admin can act on."""
        s = self.settings
        where = f"{s.host}:{s.port}"
        cert = _cert_error(exc)
        if cert is not None:
            return _Trouble(
                f"TLS certificate of {where} not accepted: {cert.verify_message or cert}",
                transient=False,
                of_server=True,
            )
        if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
            return _Trouble(f"TLS with {where} failed: {exc}", transient=False, of_server=True)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return _Trouble(
                f"login refused by {where}: {exc.code} {exc.message}",
                transient=False,
                of_server=True,
            )
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
            step = "connecting" if after is None else f"waiting for the answer to {after}"
            return _Trouble(f"timed out after {timeout:g} s {step} ({where})", of_server=True)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            if after in (None, "login"):  # trouble with the server, not with this message
                return _Trouble(f"{where} answered {exc.code} {exc.message}", of_server=True)
            return _Trouble(exc.message, code=exc.code)
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            cause = exc.__cause__
            if isinstance(cause, ConnectionRefusedError):
                return _Trouble(f"connection refused by {where}", of_server=True)
            if isinstance(cause, aiosmtplib.SMTPServerDisconnected):
                return _Trouble(
                    f"server {where} closed the connection before its greeting", of_server=True
                )
            return _Trouble(f"cannot connect to {where}: {cause or exc}", of_server=True)
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError):
            step = "" if after is None else f" after {after}"
            return _Trouble(f"server closed the connection{step} ({where})", of_server=True)
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            return _Trouble(f"{where}: {exc}", transient=False, of_server=True)
        if isinstance(exc, FileNotFoundError) and exc.filename == s.cafile:
            return _Trouble(f"cannot read the CA file {s.cafile}", transient=False, of_server=True)
        return _Trouble(f"{where}: {exc}", of_server=True)
