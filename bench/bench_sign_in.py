"""Sign-in cost (T4): argon2id with the shipped parameters, and what the service adds.

Baseline: argon2-cffi's `PasswordHasher.verify` alone, with the parameters the service uses,
in this process, one call after another. Measured: `Service.sign_in` one after another on a
SQLite file (counting the attempt, argon2 in a worker thread, the session row), and
`Service.authenticate` of a session token (the check every server call makes). CPU seconds
of the whole process per call, so "per core" means what it says on a shared machine. Then
the same sign-ins through HTTP: a real `deskbell serve --listen` on loopback, signed in to
one call after another (POST /api/v1/sessions) from this process, with the CPU of the server
process per sign-in: how many sign-ins a second one core of a server takes.
Ratio: baseline CPU per verify / service CPU per sign-in (1.0: the service adds nothing).

    .venv/bin/python bench/bench_sign_in.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from _common import ROOT, free_port, load_average, parser, report

from services.accounts import hasher
from services.api import LOCAL_OPERATOR, Service
from services.clock import ManualClock

PASSWORD = "correct horse battery staple"


def _cpu(fn_calls: int, fn: object) -> float:
    assert callable(fn)
    start = time.process_time()
    for _ in range(fn_calls):
        fn()
    return (time.process_time() - start) / fn_calls


async def _service_figures(folder: Path, sign_ins: int, checks: int) -> tuple[float, float, float]:
    clock = ManualClock()
    service = await Service.open(data_dir=folder, clock=clock)
    try:
        await service.add_person(email="ann@example.com", name="Ann")
        await service.set_password(
            acting=LOCAL_OPERATOR, email="ann@example.com", password=PASSWORD
        )
        start, wall = time.process_time(), time.perf_counter()
        token = ""
        for _ in range(sign_ins):
            new = await service.sign_in(
                email="ann@example.com", password=PASSWORD, device="bench", address="127.0.0.1"
            )
            token = new.token
        per_sign_in = (time.process_time() - start) / sign_ins
        wall_per = (time.perf_counter() - wall) / sign_ins
        start = time.process_time()
        for _ in range(checks):
            await service.authenticate(token)
        per_check = (time.process_time() - start) / checks
        return per_sign_in, wall_per, per_check
    finally:
        await service.close()


def _http_figures(folder: Path, sign_ins: int) -> tuple[float, float]:
    """(server CPU seconds, wall seconds) per sign-in through a real `deskbell serve`."""
    port = free_port()
    env = dict(os.environ, DESKBELL_DATA_DIR=str(folder))
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        while "serving the API" not in (line := server.stdout.readline()):
            if not line:
                raise SystemExit("deskbell serve did not start")
        body = json.dumps(
            {"email": "ann@example.com", "password": PASSWORD, "device": "bench"}
        ).encode()

        def sign_in() -> None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/sessions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 201

        sign_in()  # the first call imports what the rest use
        process = psutil.Process(server.pid)
        before, wall = process.cpu_times(), time.perf_counter()
        for _ in range(sign_ins):
            sign_in()
        after, wall = process.cpu_times(), time.perf_counter() - wall
        cpu = (after.user + after.system) - (before.user + before.system)
        return cpu / sign_ins, wall / sign_ins
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    sign_ins, checks = (5, 50) if args.quick else (60, 3000)
    stored = hasher().hash(PASSWORD)
    baseline = _cpu(sign_ins, lambda: hasher().verify(stored, PASSWORD))
    with tempfile.TemporaryDirectory() as folder:
        per_sign_in, wall_per, per_check = asyncio.run(
            _service_figures(Path(folder), sign_ins, checks)
        )
        http_cpu, http_wall = _http_figures(Path(folder), sign_ins)
    params = hasher()
    report(
        "sign-in (argon2id)",
        ratio=baseline / per_sign_in,
        aim="≥ 0.8: the service adds little to the hash",
        details={
            "argon2id parameters": (
                f"t={params.time_cost}, m={params.memory_cost} KiB, p={params.parallelism}"
            ),
            "argon2 verify alone": f"{baseline * 1000:.1f} ms CPU ({1 / baseline:.1f}/s per core)",
            "Service.sign_in": (
                f"{per_sign_in * 1000:.1f} ms CPU ({1 / per_sign_in:.1f} sign-ins/s per core), "
                f"{wall_per * 1000:.1f} ms wall"
            ),
            "Service.authenticate": f"{per_check * 1e6:.0f} µs CPU ({1 / per_check:.0f}/s)",
            "through HTTP (deskbell serve)": (
                f"{http_cpu * 1000:.1f} ms server CPU ({1 / http_cpu:.1f} sign-ins/s per core), "
                f"{http_wall * 1000:.1f} ms wall, one after another"
            ),
            "load average": load_average(),
        },
    )


if __name__ == "__main__":
    main()
