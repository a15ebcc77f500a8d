"""T4/T6: a team server with a self-signed certificate is trusted by pinning its SHA-256
fingerprint ("Trust this certificate"): that certificate and no other, for calls and for the
event stream."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from services.errors import InputError, UntrustedCertificateError
from services.server_client import ServerClient, events, fingerprint_text, path
from tests.support.tls import CertBundle, make_certificates


def _fingerprint(bundle: CertBundle) -> str:
    der = ssl.PEM_cert_to_DER_cert(bundle.certfile.read_text())
    return fingerprint_text(hashlib.sha256(der).digest())


async def _answer(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _stream(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"type": "ready", "position": 7})
    await ws.close()
    return ws


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, CertBundle]]:
    bundle = make_certificates(directory=tmp_path / "tls")
    app = web.Application()
    app.router.add_get("/api/v1/ok", _answer)
    app.router.add_get("/api/v1/events", _stream)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=bundle.server_context())
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"https://{host}:{port}", bundle
    await runner.cleanup()


async def test_t4_untrusted_certificate_error_carries_the_fingerprint(
    tls_server: tuple[str, CertBundle],
) -> None:
    url, bundle = tls_server
    async with ServerClient(url) as client:
        with pytest.raises(UntrustedCertificateError) as caught:
            await client.call("GET", path("ok"))
    assert caught.value.fingerprint == _fingerprint(bundle)
    assert not isinstance(caught.value, ConnectionError)


async def test_t4_a_pinned_certificate_is_trusted_for_calls_and_events(
    tls_server: tuple[str, CertBundle],
) -> None:
    url, bundle = tls_server
    pin = _fingerprint(bundle)
    async with ServerClient(url, "t", pin_sha256=pin) as client:
        assert await client.call("GET", path("ok")) == {"ok": True}
        assert client.pin_sha256 == pin
    got = [e async for e in _first(events(url, "t", pin_sha256=pin))]
    assert got == [{"type": "ready", "position": 7}]


async def _first(stream: AsyncIterator[dict[str, object]]) -> AsyncIterator[dict[str, object]]:
    async for event in stream:
        yield event
        return


async def test_t4_another_certificate_than_the_pinned_one_is_refused(
    tls_server: tuple[str, CertBundle],
) -> None:
    url, bundle = tls_server
    other = fingerprint_text(bytes(32))
    async with ServerClient(url, "t", pin_sha256=other) as client:
        with pytest.raises(UntrustedCertificateError, match="not the one trusted") as caught:
            await client.call("GET", path("ok"))
    assert caught.value.fingerprint == _fingerprint(bundle)


def test_t4_a_pin_that_is_not_a_sha256_fingerprint_is_refused() -> None:
    with pytest.raises(InputError, match="fingerprint"):
        ServerClient("https://desk.example.com", pin_sha256="AB:CD")
