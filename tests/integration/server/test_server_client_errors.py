"""The server client's refusals (T6): every error the server sends comes back as the service's
own class with its message; what is not the server speaking (an HTML page from a proxy, a
closed port, a certificate this machine does not trust, silence) is one clear error each.

The server here is a tiny real aiohttp application on loopback that answers each shape; the
real API's answers are in test_server_client.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from services import errors
from services.errors import (
    DeskbellError,
    ServerError,
    ServerUnreachableError,
    TooManyAttemptsError,
)
from services.server.errors import error_response, errors_middleware, status_of
from services.server_client import ServerClient, normalize_server_url, path
from tests.support.tls import make_certificates

ERROR_CLASSES = sorted(
    (
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, DeskbellError) and cls is not DeskbellError
    ),
    key=lambda cls: cls.__name__,
)


def _shape_app(stalled: asyncio.Event) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/api/v1/error/{kind}")
    async def error(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        cls = getattr(errors, kind, None)
        status = status_of(cls("x") if cls and cls is not TooManyAttemptsError else DeskbellError())
        response = error_response(status, kind, f"what the service said about {kind}")
        if kind == "TooManyAttemptsError":
            response.set_status(429)
            response.headers["Retry-After"] = "120"
        return response

    @routes.get("/api/v1/proxy-down")
    async def proxy_down(_request: web.Request) -> web.Response:
        return web.Response(
            status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
        )

    @routes.get("/api/v1/html")
    async def html(_request: web.Request) -> web.Response:
        return web.Response(text="<html>Welcome to nginx!</html>", content_type="text/html")

    @routes.get("/api/v1/bad-json")
    async def bad_json(_request: web.Request) -> web.Response:
        return web.Response(text="{not json", content_type="application/json")

    @routes.get("/api/v1/internal")
    async def internal(_request: web.Request) -> web.Response:
        return error_response(500, "InternalError", "internal error; the server logged it")

    @routes.get("/api/v1/stall")
    async def stall(_request: web.Request) -> web.Response:
        await stalled.wait()
        return web.json_response({})

    @routes.get("/api/v1/hang-up")
    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await stalled.wait()
        return web.json_response({})

    @routes.get("/api/v1/ok")
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"auth": request.headers.get("Authorization")})

    app = web.Application(middlewares=[errors_middleware])  # the server's own 404s
    app.router.add_routes(routes)
    return app


async def _serve(
    app: web.Application, context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"{'https' if context else 'http'}://{host}:{port}"


@pytest.fixture
async def stalled() -> AsyncIterator[asyncio.Event]:
    event = asyncio.Event()
    yield event
    event.set()


@pytest.fixture
async def server(stalled: asyncio.Event) -> AsyncIterator[str]:
    runner, url = await _serve(_shape_app(stalled))
    yield url
    stalled.set()
    await runner.cleanup()


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
async def test_t6_each_error_the_server_sends_is_raised_as_the_same_class(
    server: str, cls: type[DeskbellError]
) -> None:
    async with ServerClient(server) as client:
        with pytest.raises(cls) as caught:
            await client.call("GET", path("error", cls.__name__))
    assert type(caught.value) is cls
    assert str(caught.value) == f"what the service said about {cls.__name__}"


async def test_t6_too_many_attempts_says_when_to_try_again(server: str) -> None:
    async with ServerClient(server) as client:
        with pytest.raises(TooManyAttemptsError) as caught:
            await client.call("GET", path("error", "TooManyAttemptsError"))
    wait = (caught.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 60 < wait <= 120


async def test_t6_an_unknown_error_type_is_a_deskbell_error_with_its_message(
    server: str,
) -> None:
    async with ServerClient(server) as client:
        with pytest.raises(DeskbellError, match="what the service said about SomethingNew"):
            await client.call("GET", path("error", "SomethingNew"))
        with pytest.raises(DeskbellError, match="internal error; the server logged it"):
            await client.call("GET", path("internal"))


async def test_t6_a_call_the_server_does_not_have_says_so(server: str) -> None:
    async with ServerClient(server) as client:
        with pytest.raises(ServerError, match=r"does not offer GET /api/v1/nothing-here"):
            await client.call("GET", path("nothing-here"))


async def test_t6_a_proxys_html_error_page_means_the_server_is_down(server: str) -> None:
    async with ServerClient(server) as client:
        with pytest.raises(ServerUnreachableError, match="502 Bad Gateway") as caught:
            await client.call("GET", path("proxy-down"))
    assert isinstance(caught.value, ConnectionError)  # transient: try again
    assert "<html>" not in str(caught.value)


async def test_t6_an_answer_that_is_not_the_api_is_one_clear_error(server: str) -> None:
    async with ServerClient(server) as client:
        for where in ("html", "bad-json"):
            with pytest.raises(ServerError, match="not Deskbell's API") as caught:
                await client.call("GET", path(where))
            assert not isinstance(caught.value, ConnectionError)


async def test_t6_a_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        async with ServerClient(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(ServerUnreachableError, match="connection was refused"):
                await client.call("GET", path("me"))


async def test_t6_a_server_that_does_not_answer_in_time_is_unreachable(server: str) -> None:
    async with ServerClient(server, timeout_s=0.5) as client:
        with pytest.raises(ServerUnreachableError, match=r"did not answer within 0\.5 seconds"):
            await client.call("GET", path("stall"))


async def test_t6_a_server_that_hangs_up_is_unreachable(server: str) -> None:
    async with ServerClient(server) as client:
        with pytest.raises(ServerUnreachableError, match="try again"):
            await client.call("GET", path("hang-up"))


async def test_t6_the_token_goes_in_the_authorization_header(server: str) -> None:
    async with ServerClient(server, "t0ken") as client:
        assert await client.call("GET", path("ok")) == {"auth": "Bearer t0ken"}


async def test_t6_an_untrusted_certificate_is_refused_with_its_fingerprint(
    stalled: asyncio.Event, tmp_path: Path
) -> None:
    bundle = make_certificates(directory=tmp_path)
    runner, url = await _serve(_shape_app(stalled), bundle.server_context())
    try:
        der = ssl.PEM_cert_to_DER_cert(bundle.certfile.read_text())
        digest = hashlib.sha256(der).hexdigest().upper()
        fingerprint = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
        async with ServerClient(url) as client:
            with pytest.raises(ServerError, match="is not trusted") as caught:
                await client.call("GET", path("ok"))
        assert fingerprint in str(caught.value)
        assert "--cafile" in str(caught.value)
        assert not isinstance(caught.value, ConnectionError)  # trying again will not help
        async with ServerClient(url, "t", cafile=str(bundle.cafile)) as client:
            assert await client.call("GET", path("ok")) == {"auth": "Bearer t"}
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("https://Desk.Example.com/", "https://desk.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/deskbell/", "http://localhost:8080/deskbell"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_t6_a_server_address_is_kept_in_one_form(typed: str, kept: str) -> None:
    assert normalize_server_url(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "desk.example.com",
        "ftp://desk.example.com",
        "http://desk.example.com",  # plain http to another machine: passwords in clear
        "https://user:pw@desk.example.com",
        "https://desk.example.com?x=1",
        "https://desk.example.com:port",
    ],
)
def test_t6_a_bad_server_address_is_refused(typed: str) -> None:
    with pytest.raises(errors.InputError):
        normalize_server_url(typed)
