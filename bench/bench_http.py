"""The web framework (issue 10): aiohttp as the server uses it against Starlette on uvicorn,
on the same service operation, each in its own server process.

- Calls: `GET /api/v1/me` with a Bearer token: aiohttp through `build_app`'s whole middleware
  stack (request id, errors, auth); Starlette with the same work written in its endpoint (a
  request id, the token read, `Service.authenticate`, the same JSON). 16 keep-alive
  connections from this process for a fixed time per round; rounds interleaved (aiohttp,
  Starlette, aiohttp, ...) so a change in the machine's load hits both. Figures: calls/s, CPU
  of the server process per call, p50/p99 latency as the client saw it.
- Broadcast: 200 WebSocket clients connected to each server; one message sent to all of them;
  time until the last client has it (p50/p99) and the server's CPU per broadcast.
Both on asyncio's own loop (the service runs on it), uvicorn with httptools; access logs off
in both. The baseline is Starlette: ratio = Starlette's CPU per call / aiohttp's (above 1:
aiohttp is cheaper).

Starlette and uvicorn are not the app's dependencies: `pip install -e '.[bench]'`.

    .venv/bin/python bench/bench_http.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, free_port, load_average, parser, report

CONNECTIONS = 16
CLIENTS = 200
MESSAGE = json.dumps({"type": "message", "position": 1, "text": "x" * 160})


# --- the two servers (run as `bench_http.py --serve NAME --data DIR --port P`) ----------------


async def _open(data: Path) -> Any:
    from services.api import Service

    return await Service.open(data_dir=data)


def _serve_aiohttp(data: Path, port: int) -> None:
    from aiohttp import web

    from services.server.app import build_app

    async def main() -> None:
        service = await _open(data)
        app = build_app(service)
        sockets: set[web.WebSocketResponse] = set()

        async def ws(request: web.Request) -> web.WebSocketResponse:
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            sockets.add(socket)
            async for _ in socket:
                pass
            sockets.discard(socket)
            return socket

        async def broadcast(_request: web.Request) -> web.Response:
            for socket in list(sockets):
                await socket.send_str(MESSAGE)
            return web.Response(text=str(len(sockets)))

        app.router.add_get("/bench/ws", ws)
        app.router.add_post("/bench/broadcast", broadcast)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_starlette(data: Path, port: int) -> None:
    import contextlib

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from services.errors import DeskbellError
    from services.server.codec import plain

    state: dict[str, Any] = {}
    sockets: set[WebSocket] = set()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        state["service"] = await _open(data)
        print("ready", flush=True)
        yield

    async def me(request: Request) -> JSONResponse:
        rid = request.headers.get("x-request-id") or secrets.token_hex(8)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise DeskbellError("sign in first")
            who = await state["service"].authenticate(token.strip())
        except DeskbellError as exc:
            body = {"error": {"type": type(exc).__name__, "message": str(exc)}}
            return JSONResponse(body, status_code=401, headers={"X-Request-ID": rid})
        return JSONResponse(plain(who), headers={"X-Request-ID": rid})

    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        sockets.add(socket)
        try:
            while True:
                await socket.receive_text()
        except WebSocketDisconnect:
            sockets.discard(socket)

    async def broadcast(_request: Request) -> PlainTextResponse:
        for socket in list(sockets):
            await socket.send_text(MESSAGE)
        return PlainTextResponse(str(len(sockets)))

    app = Starlette(
        routes=[
            Route("/api/v1/me", me),
            WebSocketRoute("/bench/ws", ws),
            Route("/bench/broadcast", broadcast, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="asyncio", http="httptools", ws="websockets-sansio",
        access_log=False, log_level="warning",
    )  # fmt: skip


# --- the measuring side -----------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    port: int
    rounds: list[dict[str, float]] = field(default_factory=list)
    casts: list[dict[str, float]] = field(default_factory=list)

    def cpu_s(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)


def _start(name: str, data: Path) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--data", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise SystemExit(f"the {name} server did not start (pip install -e '.[bench]'?)")
    return Server(name, proc, port)


async def _seed(data: Path) -> str:
    from services.api import LOCAL_OPERATOR, Service

    service = await Service.open(data_dir=data)
    try:
        await service.add_person(email="ann@example.com", name="Ann")
        password = "correct horse battery staple"
        await service.set_password(
            acting=LOCAL_OPERATOR, email="ann@example.com", password=password
        )
        new = await service.sign_in(
            email="ann@example.com", password=password, device="bench", address="127.0.0.1"
        )
        return new.token
    finally:
        await service.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _calls(server: Server, token: str, seconds: float) -> dict[str, float]:
    import aiohttp

    url = f"http://127.0.0.1:{server.port}/api/v1/me"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(CONNECTIONS):  # warm the connections and the process
            async with http.get(url, headers=headers) as response:
                assert response.status == 200, await response.text()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with http.get(url, headers=headers) as response:
                    await response.read()
                    assert response.status == 200
                latencies.append(time.perf_counter() - start)

        cpu, wall = server.cpu_s(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        cpu, wall = server.cpu_s() - cpu, time.perf_counter() - wall
    return {
        "per_s": len(latencies) / wall,
        "cpu_us": cpu / len(latencies) * 1e6,
        "p50_ms": _pct(latencies, 0.5) * 1e3,
        "p99_ms": _pct(latencies, 0.99) * 1e3,
    }


async def _broadcasts(server: Server, count: int) -> dict[str, float]:
    import aiohttp

    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await http.ws_connect(f"{base}/bench/ws") for _ in range(CLIENTS)]
        await asyncio.sleep(0.2)
        spreads: list[float] = []
        cpu = server.cpu_s()
        for _ in range(count):
            start = time.perf_counter()
            received = [asyncio.ensure_future(s.receive(timeout=60)) for s in sockets]
            async with http.post(f"{base}/bench/broadcast") as response:
                assert int(await response.text()) == CLIENTS
            for message in await asyncio.gather(*received):
                assert message.data == MESSAGE
            spreads.append(time.perf_counter() - start)
        cpu = server.cpu_s() - cpu
        for s in sockets:
            await s.close()
    return {
        "p50_ms": _pct(spreads, 0.5) * 1e3,
        "p99_ms": _pct(spreads, 0.99) * 1e3,
        "cpu_ms": cpu / count * 1e3,
    }


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


async def _measure(quick: bool) -> None:
    rounds, seconds, casts = (1, 1.0, 5) if quick else (5, 6.0, 60)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        token = await _seed(data)
        servers = [_start("aiohttp", data), _start("starlette", data)]
        try:
            for _ in range(rounds):
                for server in servers:
                    server.rounds.append(await _calls(server, token, seconds))
                for server in servers:
                    server.casts.append(await _broadcasts(server, casts))
        finally:
            for server in servers:
                server.proc.kill()
                server.proc.wait()
    aio, star = servers
    details = {}
    for s in servers:
        per_round = ", ".join(f"{r['per_s']:,.0f}" for r in s.rounds)
        details[f"{s.name} GET /api/v1/me"] = (
            f"{_median(s.rounds, 'per_s'):,.0f} calls/s, "
            f"{_median(s.rounds, 'cpu_us'):.0f} µs server CPU a call, "
            f"p50 {_median(s.rounds, 'p50_ms'):.1f} ms, p99 {_median(s.rounds, 'p99_ms'):.1f} ms "
            f"(rounds: {per_round} calls/s)"
        )
    for s in servers:
        details[f"{s.name} broadcast to {CLIENTS} WebSockets"] = (
            f"last client after p50 {_median(s.casts, 'p50_ms'):.1f} ms, "
            f"p99 {_median(s.casts, 'p99_ms'):.1f} ms; "
            f"{_median(s.casts, 'cpu_ms'):.1f} ms server CPU a broadcast"
        )
    details["load average"] = f"{load_average()} (cores: {os.cpu_count()})"
    report(
        "web framework: aiohttp (as used) vs Starlette on uvicorn",
        ratio=_median(star.rounds, "cpu_us") / _median(aio.rounds, "cpu_us"),
        aim="≥ 0.8: aiohttp costs at most a quarter more CPU a call than Starlette",
        details=details,
    )


def main() -> None:
    args_parser = parser(__doc__ or "")
    args_parser.add_argument("--serve", choices=("aiohttp", "starlette"), help=argparse.SUPPRESS)
    args_parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args_parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = args_parser.parse_args()
    if args.serve == "aiohttp":
        _serve_aiohttp(args.data, args.port)
    elif args.serve == "starlette":
        _serve_starlette(args.data, args.port)
    else:
        asyncio.run(_measure(args.quick))


if __name__ == "__main__":
    main()
