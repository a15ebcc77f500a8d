"""The team server's HTTP client (T6): one aiohttp session to one server, signed in with a
device session's Bearer token; and `events()`, which follows the server's event stream (a
WebSocket of JSON events, each with its "type" and "position": pass the last position as
`after` on the next connection to carry on with no gap and no duplicate, or be told "resync").

Every answer that is not a success becomes the service's own error: the server sends
`{"error": {"type": ..., "message": ...}}` and the client raises the class of that name from
`services.errors` with that message, so a caller (the command line) prints the same one line
as when it runs locally. What is not the server speaking gets one sentence a person can act on:
an unreachable or refusing server, a timeout, a proxy's HTML error page
(`ServerUnreachableError`, transient) or a certificate this machine does not trust, with its
SHA-256 fingerprint (`UntrustedCertificateError`). TLS certificates are always verified; a
team server with its own certificate authority is trusted through `cafile`, and one with a
self-signed certificate through `pin_sha256`, the fingerprint a person chose to trust ("Trust
this certificate"): then that certificate, and no other, is accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import ssl
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from services import errors
from services.errors import (
    AuthenticationError,
    DeskbellError,
    InputError,
    ServerError,
    ServerUnreachableError,
    TooManyAttemptsError,
    UntrustedCertificateError,
    quoted,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    # Imported where used: the client alone (a desktop's team sync) loads neither the
    # accounts' core (SQLAlchemy, the models) nor the server's codec until it decodes.
    from services.accounts import SignedIn

T = TypeVar("T")

__all__ = [
    "API_PATH",
    "SESSION_ENDED",
    "ServerClient",
    "decode",
    "events",
    "fingerprint_text",
    "normalize_server_url",
    "path",
    "tls_context",
]

API_PATH: Final = "/api/v1/"
DEFAULT_TIMEOUT_S: Final = 30.0
# A proxy's own answers when the server behind it does not answer: the server is down.
_PROXY_DOWN: Final = frozenset({502, 503, 504})


def normalize_server_url(url: str) -> str:
    """The server's root URL as typed (`https://desk.example.com/`), checked and without its
    trailing slash: the key its token is kept under. Plain http only to this machine, since
    passwords and tokens would cross the network readable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{quoted(url)} is not a server address: give https://HOST[:PORT]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError(f"{quoted(url)}: give the server's address only, https://HOST[:PORT]")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InputError(
            f"{quoted(url)} is plain http to another machine: passwords would cross the "
            "network readable; use https://"
        )
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise InputError(f"{quoted(url)} has a port that is not a number") from None
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decode(tp: type[T] | Any, answer: object) -> T:
    """The server's answer as `tp`; ServerError, naming what did not fit, when no Deskbell
    server of this version would answer so (another version, a proxy's page)."""
    from services.server.codec import from_plain

    try:
        return cast(T, from_plain(tp, answer))
    except ValueError as exc:
        raise ServerError(f"the server's answer was not understood ({exc})") from None


def path(*segments: str | int) -> str:
    """An API path from its segments, each escaped (an email address, a template's name)."""
    return API_PATH + "/".join(quote(str(s), safe="") for s in segments)


class ServerClient:
    """Calls to one Deskbell server. Use `async with`, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        cafile: str | None = None,
        pin_sha256: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.base_url = normalize_server_url(base_url)
        self.token = token
        self._cafile = cafile
        self._pin = _pin(pin_sha256)
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None
        if cafile is not None:
            self._context()  # an unreadable file is refused now, not at the first call

    @property
    def cafile(self) -> str | None:
        """The certificate authority file this client trusts the server through, if any."""
        return self._cafile

    @property
    def pin_sha256(self) -> str | None:
        """The SHA-256 fingerprint of the one certificate this client trusts, if pinned."""
        return fingerprint_text(self._pin.fingerprint) if self._pin is not None else None

    async def __aenter__(self) -> ServerClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- signing in and out ----------------------------------------------------------------

    async def sign_in(self, *, email: str, password: str, device: str) -> SignedIn:
        """A new device session: its token is kept in `self.token`; returns who signed in."""
        answer = await self.call(
            "POST",
            path("sessions"),
            json_body={"email": email, "password": password, "device": device},
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
            raise ServerError(f"{self.base_url} answered a sign-in without a session token")
        self.token = answer["token"]
        from services.accounts import SignedIn

        return decode(SignedIn, answer.get("who"))

    async def sign_out(self) -> None:
        """End this session on the server; the token stops working at once."""
        await self.call("DELETE", path("sessions", "current"))
        self.token = None

    async def me(self) -> SignedIn:
        from services.accounts import SignedIn

        return decode(SignedIn, await self.call("GET", path("me")))

    # --- any call --------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        api_path: str,
        *,
        json_body: object = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    ) -> Any:
        """One API call; its JSON answer (None for an empty one), or the service's error.
        `params` as pairs repeat a name (`ids=1&ids=2`)."""
        headers = {"Accept": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = URL(self.base_url + api_path, encoded=True)
        session = self._open()
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                json=json_body if data is None and json_body is not None else None,
                data=data,
                params=params,
                ssl=self._context(),
            ) as response:
                body = await response.read()
        except aiohttp.ClientConnectorCertificateError as exc:
            raise await self._untrusted(exc) from None
        except aiohttp.ServerFingerprintMismatch as exc:
            shown = fingerprint_text(exc.got)
            raise UntrustedCertificateError(
                f"the certificate of {self.base_url} is not the one trusted on this computer: "
                f"its SHA-256 fingerprint is now {shown}. If your team server's certificate "
                "was replaced, trust the new one; otherwise do not connect",
                fingerprint=shown,
            ) from None
        except aiohttp.ClientConnectorSSLError as exc:
            raise ServerError(f"no secure connection to {self.base_url}: {exc.os_error}") from None
        except aiohttp.ClientConnectorDNSError:
            raise ServerUnreachableError(
                f"cannot find the server {urlsplit(self.base_url).hostname}: no such host name, "
                "or no network; check the address"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ServerUnreachableError(
                f"cannot reach the server at {self.base_url}: {_why(exc.os_error)}"
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ServerUnreachableError(
                f"the server at {self.base_url} did not answer within "
                f"{self._timeout_s:g} seconds; try again"
            ) from None
        except aiohttp.ClientError as exc:
            detail = str(exc) or type(exc).__name__
            raise ServerUnreachableError(
                f"the connection to {self.base_url} failed: {detail}; try again"
            ) from None
        # Outside the try: the service's own errors include a TimeoutError (StoreBusyError).
        return self._answer(response, body)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                raise_for_status=False,
            )
        return self._session

    def _context(self) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
        if self._cafile is None and not self.base_url.startswith("https:"):
            return True
        if self._pin is not None:
            return self._pin
        if self._ssl is None:
            self._ssl = tls_context(self._cafile)
        return self._ssl

    def _answer(self, response: aiohttp.ClientResponse, body: bytes) -> Any:
        status = response.status
        decoded = _json(body) if response.content_type == "application/json" else _NOT_JSON
        if decoded is _NOT_JSON and (status >= 300 or body):
            raise self._not_the_api(response)
        if status < 300:
            return None if not body else decoded
        problem = decoded.get("error") if isinstance(decoded, dict) else None
        if not isinstance(problem, dict):
            raise self._not_the_api(response)
        return self._raise(response, str(problem.get("type", "")), str(problem.get("message", "")))

    def _raise(self, response: aiohttp.ClientResponse, kind: str, message: str) -> Any:
        cls = getattr(errors, kind, None)
        if kind == TooManyAttemptsError.__name__:
            wait = response.headers.get("Retry-After", "")
            seconds = int(wait) if wait.isdigit() else 60
            raise TooManyAttemptsError(
                message, retry_at=datetime.now(UTC) + timedelta(seconds=seconds)
            )
        if isinstance(cls, type) and issubclass(cls, DeskbellError):
            raise cls(message)
        if response.status == 404:
            # Not one of the service's own refusals: the server has no such call.
            raise ServerError(
                f"the server at {self.base_url} does not offer "
                f"{response.method} {response.url.path}: it may run an older Deskbell"
            )
        raise DeskbellError(message or f"the server answered {response.status} {response.reason}")

    def _not_the_api(self, response: aiohttp.ClientResponse) -> DeskbellError:
        what = f"{response.status} {response.reason or ''}".strip()
        if response.status in _PROXY_DOWN:
            return ServerUnreachableError(
                f"{self.base_url} answered {what} without Deskbell's API: the server behind "
                "it is down or not answering; try again"
            )
        kind = response.content_type or "no content type"
        return ServerError(
            f"{self.base_url} answered {what} ({kind}), which is not Deskbell's API: "
            "check the server's address"
        )

    async def _untrusted(
        self, exc: aiohttp.ClientConnectorCertificateError
    ) -> UntrustedCertificateError:
        reason = getattr(exc.certificate_error, "verify_message", None) or str(
            exc.certificate_error
        )
        fingerprint = await self._fingerprint(exc.host, exc.port or 443)
        shown = f"; its SHA-256 fingerprint is {fingerprint}" if fingerprint else ""
        return UntrustedCertificateError(
            f"the certificate of {self.base_url} is not trusted ({reason}){shown}. If that is "
            "your team server's, give its certificate authority's file with --cafile",
            fingerprint=fingerprint,
        )

    async def _fingerprint(self, host: str, port: int) -> str | None:
        """The certificate the server shows, read without trusting it, only to display its
        fingerprint for a person to compare; nothing is sent over this connection."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context, server_hostname=host),
                self._timeout_s,
            )
        except (OSError, TimeoutError):
            return None
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        finally:
            writer.close()
        if not der:
            return None
        return fingerprint_text(hashlib.sha256(der).digest())


def fingerprint_text(digest: bytes) -> str:
    """A SHA-256 digest as people compare it: `AB:CD:...`."""
    text = digest.hex().upper()
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def _pin(fingerprint: str | None) -> aiohttp.Fingerprint | None:
    """The pinned certificate's check; InputError for anything but a SHA-256 fingerprint."""
    if fingerprint is None:
        return None
    try:
        digest = bytes.fromhex(fingerprint.replace(":", "").strip())
        return aiohttp.Fingerprint(digest)
    except ValueError:
        raise InputError(
            f"{quoted(fingerprint)} is not a certificate's SHA-256 fingerprint"
        ) from None


_NOT_JSON: Final = object()


def _why(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused (is deskbell serve running there, on that port?)"
    return (error.strerror or str(error) or type(error).__name__).lower()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return _NOT_JSON


# --- the event stream --------------------------------------------------------------------------

SESSION_ENDED: Final = 4401  # the server's close code when the session ends


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Verifying TLS, trusting `cafile` as well when given; InputError if it cannot be read."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(
            f"cannot read the certificate file {quoted(cafile or '')}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from None


async def events(
    base_url: str,
    token: str,
    after: int | None = None,
    *,
    cafile: str | None = None,
    pin_sha256: str | None = None,
    heartbeat_s: float = 30.0,
) -> AsyncIterator[dict[str, Any]]:
    """The server's events past position `after` (None: from now on), then live ones;
    `pin_sha256` trusts that one certificate (ServerClient.pin_sha256).

    Raises AuthenticationError when the token is refused or the session ends (close code
    4401), ConnectionError when the server cannot be reached or closes the stream otherwise
    (reconnect with the last position)."""
    url = base_url.rstrip("/") + "/api/v1/events"
    params = {} if after is None else {"after": str(after)}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                url,
                params=params,
                headers=headers,
                heartbeat=heartbeat_s,
                ssl=_pin(pin_sha256) or (tls_context(cafile) if cafile else True),
                autoclose=False,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise AuthenticationError("not signed in: sign in again") from None
            if exc.status == 400:
                raise InputError(f"the server refused the event stream: {exc.message}") from None
            raise DeskbellError(f"the server refused the event stream ({exc.status})") from None
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionError(f"cannot reach the server at {base_url}: {exc}") from exc
        # The close code is read from the server's close frame itself: the server may drop
        # the connection before the reply an automatic close would write, which would turn
        # the code into 1006.
        code: int | None = None
        async with ws:
            while True:
                message = await ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    event = json.loads(message.data)
                    if isinstance(event, dict):
                        yield event
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    code = message.data
                    break
                else:  # an error, or closed by this side
                    break
        if code == SESSION_ENDED:
            raise AuthenticationError("the session has ended: sign in again")
        raise ConnectionResetError(f"the server closed the event stream ({code or ws.close_code})")
