"""The shipped deployment files, run for real (T1, T4): nginx with packaging/deploy/nginx/
deskbell.conf (only its ports and paths changed) terminates TLS in front of a real `deskbell
serve` on loopback; the systemd unit passes `systemd-analyze verify`.

Through the proxy: /healthz answers; a sign-in works and the server records the client's own
address (127.0.0.2 here, the proxy being 127.0.0.1), not the proxy's and not one the client
wrote into X-Forwarded-For itself, which is what sign-in throttling counts; and a WebSocket
upgrade to /api/v1/events reaches the backend as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.conftest import ROOT, Deskbell, wait_until
from tests.support.smtpd import free_port
from tests.support.tls import CertBundle, make_certificates

DEPLOY = ROOT / "packaging" / "deploy"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
ANN = "ann@example.com"
PW = "correct horse battery"
CLIENT = "127.0.0.2"  # the client's own loopback address; nginx listens on 127.0.0.1

needs_nginx = pytest.mark.skipif(
    NGINX is None and not os.environ.get("CI"),
    reason="nginx is not installed here (make system-packages installs it; CI has it)",
)


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the shipped config should have {old!r} once"
    return text.replace(old, new)


def _site_config(*, port: int, redirect_port: int, backend: int, certs: CertBundle) -> str:
    """The shipped file with only its ports and paths changed."""
    text = (DEPLOY / "nginx" / "deskbell.conf").read_text()
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{redirect_port};"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{backend};"),
        ("server 127.0.0.1:8081;", f"server 127.0.0.1:{backend};"),
        ("/etc/ssl/deskbell/fullchain.pem", str(certs.certfile)),
        ("/etc/ssl/deskbell/privkey.pem", str(certs.keyfile)),
    ):
        text = _replace_once(text, old, new)
    return text


@contextlib.contextmanager
def nginx(folder: Path, *, backend: int, certs: CertBundle) -> Iterator[int]:
    """nginx in the foreground with the shipped site config; yields its HTTPS port."""
    assert NGINX is not None, "nginx is missing: make system-packages installs it"
    folder.mkdir()
    port, redirect_port = free_port(), free_port()
    site = folder / "deskbell.conf"
    site.write_text(
        _site_config(port=port, redirect_port=redirect_port, backend=backend, certs=certs)
    )
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root nginx's workers would switch to `nobody`, who cannot enter the test's folder.
    user = "user root;" if os.geteuid() == 0 else ""
    (folder / "nginx.conf").write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 128; }}
http {{
    access_log {folder / "access.log"};
{temp}
    include {site};
}}
"""
    )
    proc = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(folder),
            "-c",
            str(folder / "nginx.conf"),
            "-e",
            str(folder / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            assert proc.poll() is None, (folder / "error.log").read_text()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1),
            ):
                return True
            return False

        assert wait_until(listening, timeout_s=60), (folder / "error.log").read_text()
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.asynccontextmanager
async def client(certs: CertBundle) -> AsyncIterator[aiohttp.ClientSession]:
    """A client on its own address, trusting the test CA."""
    connector = aiohttp.TCPConnector(ssl=certs.client_context(), local_addr=(CLIENT, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@pytest.fixture
def certs(tmp_path: Path) -> CertBundle:
    folder = tmp_path / "certs"
    folder.mkdir()
    return make_certificates(directory=folder)


@needs_nginx
async def test_t1_t4_nginx_with_the_shipped_config_serves_healthz_and_sign_in_with_the_real_client(
    deskbell: Deskbell, certs: CertBundle, tmp_path: Path
) -> None:
    deskbell.out("user", "add", ANN, "--name", "Ann Admin", "--admin")
    deskbell.run("user", "password", ANN, stdin=PW + "\n")
    backend = free_port()
    proc = deskbell.serve("--listen", f"127.0.0.1:{backend}", "--trusted-proxy", "127.0.0.1/32")

    def serving() -> bool:
        assert proc.poll() is None, deskbell.serve_log()
        return "serving the API" in deskbell.serve_log()

    assert await asyncio.to_thread(wait_until, serving, timeout_s=60), deskbell.serve_log()
    with nginx(tmp_path / "nginx", backend=backend, certs=certs) as port:
        base = f"https://127.0.0.1:{port}"
        async with client(certs) as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok"}
            async with http.post(
                f"{base}/api/v1/sessions",
                json={"email": ANN, "password": PW, "device": "through nginx"},
                headers={"X-Forwarded-For": "198.51.100.9"},  # the client's lie
            ) as response:
                assert response.status == 201, await response.text()
                token = (await response.json())["token"]
            async with http.get(
                f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
                assert response.headers["X-Request-ID"]  # nginx's id, carried through
    sessions = json.loads(deskbell.out("user", "sessions", ANN, "--json"))
    assert [s["address"] for s in sessions if s["device"] == "through nginx"] == [CLIENT]


@needs_nginx
async def test_t1_nginx_with_the_shipped_config_passes_the_event_streams_websocket_upgrade(
    certs: CertBundle, tmp_path: Path
) -> None:
    """The backend here is a small aiohttp app with a WebSocket at the event stream's path: it
    answers with the upgrade headers it received, so the test sees what nginx passed on."""

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        seen = {
            "upgrade": request.headers.get("Upgrade", ""),
            "connection": request.headers.get("Connection", ""),
            "forwarded_for": request.headers.get("X-Forwarded-For", ""),
            "query": request.query_string,
        }
        await ws.prepare(request)
        await ws.send_json(seen)
        async for message in ws:
            await ws.send_str(f"echo {message.data}")
        return ws

    app = web.Application()
    app.router.add_get("/api/v1/events", events)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    backend = free_port()
    await web.TCPSite(runner, "127.0.0.1", backend).start()
    try:
        with nginx(tmp_path / "nginx", backend=backend, certs=certs) as port:
            async with (
                client(certs) as http,
                http.ws_connect(f"https://127.0.0.1:{port}/api/v1/events?after=41") as ws,
            ):
                seen = await ws.receive_json(timeout=30)
                assert seen["upgrade"].lower() == "websocket"
                assert "upgrade" in seen["connection"].lower()
                assert seen["forwarded_for"] == CLIENT
                assert seen["query"] == "after=41"
                await ws.send_str("ping")
                assert (await ws.receive(timeout=30)).data == "echo ping"
    finally:
        await runner.cleanup()


def test_t1_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (it comes with systemd)")
    unit = (DEPLOY / "deskbell-serve.service").read_text()
    # Only the path of the program changes: verify checks that it exists and runs.
    installed = ROOT / ".venv" / "bin" / "deskbell"
    program = installed if installed.exists() else Path(shutil.which("deskbell") or "/bin/true")
    unit = _replace_once(unit, "/opt/deskbell/venv/bin/deskbell", str(program))
    path = tmp_path / "deskbell-serve.service"
    path.write_text(unit)
    done = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # verify reports unknown keys and bad values as warnings with exit 0: none allowed.
    assert done.stderr.strip() == "", done.stderr
