"""Event stream fan-out (issue 10): post -> event at N connected WebSocket clients, one
`deskbell serve --listen` vs two on one PostgreSQL.

A private PostgreSQL cluster (tests/support/postgres.py). Each round a fresh database holds one
item followed by N agents, each with a device session (written directly with a known token:
N argon2 sign-ins would only measure argon2, which bench_sign_in.py does). One or two serve
processes start on it; N clients in this process follow `/api/v1/events` (split evenly across
the serves); then this process posts `--posts` messages through `Service.post`, one every
`--gap` seconds, and notes when each client receives each message's event.

Printed per round: latency from just before the post call to the event's arrival, p50 and p99
over every (post, client) pair; the serves' CPU per post (psutil, their user+system time over
the posting phase, summed over the serves); every event arrived once (checked, else the
benchmark fails); the load average. Rounds are interleaved (1, 2, 2, 1 serves...) at each N.
Baseline: the same post's event heard by a `Service.subscribe` listener in this process (the
change feed alone, no server), so the ratio is what the server adds.

    .venv/bin/python bench/bench_events.py [--quick] [--clients 50,200] [--posts 40] [--rounds 2]
        or, agents that post and mark seen: --agents 200 [--serves 2,1] [--rate 3]

`--agents N`: N agents that post and mark seen through the API, against the same posts
through `Service.post` in one process (bench/_events_agents.py says how).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import psutil
from _common import ROOT, load_average, parser

from services.api import ConversationKind, Service
from services.store.database import Tx
from services.store.models import DeviceSession
from tests.support.databases import migrate
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from tests.support.service_url import service_url
from tests.support.smtpd import free_port

POSTER = "poster@example.com"


@dataclass(frozen=True)
class Round:
    serves: int
    clients: int
    p50_ms: float
    p99_ms: float
    feed_p50_ms: float
    serve_cpu_ms_per_post: float


def _agent(n: int) -> str:
    return f"agent{n}@example.com"


def _sessions(tx: Tx, person_ids: list[int], tokens: list[str]) -> None:
    now = datetime.now(UTC)
    for person_id, token in zip(person_ids, tokens, strict=True):
        tx.conn.execute(
            DeviceSession.__table__.insert().values(
                person_id=person_id,
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                device="bench",
                address="127.0.0.1",
                created_at=now,
                last_used_at=now,
            )
        )


async def _seed(url: str, clients: int) -> tuple[int, list[str]]:
    service = await Service.open(url=url)
    try:
        await service.set_config("unseen_delay_s", "3600")  # no email in the measurement
        await service.add_person(email=POSTER, name="Poster")
        ids = [
            (await service.add_person(email=_agent(n), name=f"Agent {n}")).id
            for n in range(clients)
        ]
        item = await service.create_item(
            title="Busy", followers=[POSTER, *(_agent(n) for n in range(clients))]
        )
        tokens = [secrets.token_urlsafe(32) for _ in ids]
        await service.db.write(_sessions, ids, tokens)
        return item.number, tokens
    finally:
        await service.close()


def _start_serves(
    url: str, data_dir: Path, count: int
) -> tuple[list[subprocess.Popen[str]], list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["DESKBELL_DATA_DIR"] = str(data_dir)
    procs, logs = [], []
    for n in range(count):
        log = data_dir / f"serve-{n}.log"
        logs.append(log)
        with log.open("w") as out:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "app.cli",
                        "--database-url",
                        url,
                        "serve",
                        "--listen",
                        f"127.0.0.1:{free_port()}",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    bases = []
    deadline = time.monotonic() + 120
    for proc, log in zip(procs, logs, strict=True):
        while True:
            match = re.search(r"serving the API on (http://\S+)", log.read_text())
            if match and "service running" in log.read_text():
                bases.append(match.group(1))
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
    return procs, bases


async def _measure(
    url: str,
    bases: list[str],
    tokens: list[str],
    number: int,
    posts: int,
    gap: float,
    serves: list[subprocess.Popen[str]],
) -> tuple[list[float], list[float], float]:
    arrived: dict[int, list[float]] = {}  # message id -> arrival times
    ready = 0
    all_ready = asyncio.Event()

    async def client(ws: aiohttp.ClientWebSocketResponse) -> None:
        nonlocal ready
        async for message in ws:
            event = json.loads(message.data)
            if event["type"] == "ready":
                ready += 1
                if ready == len(tokens):
                    all_ready.set()
            elif event["type"] == "message":
                arrived.setdefault(event["message"]["id"], []).append(time.monotonic())

    service = await Service.open(url=url)
    await service.start(mail=False)
    heard: dict[int, float] = {}
    feed_start: dict[int, float] = {}

    def listener(batch: object) -> None:
        for change in batch:  # type: ignore[attr-defined]
            if change.subject_id is not None and change.kind == "message":
                heard.setdefault(change.subject_id, time.monotonic())

    service.subscribe(listener)
    started: dict[int, float] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [
            await http.ws_connect(
                f"{bases[n % len(bases)]}/api/v1/events",
                headers={"Authorization": f"Bearer {token}"},
            )
            for n, token in enumerate(tokens)
        ]
        tasks = [asyncio.create_task(client(ws)) for ws in sockets]
        await asyncio.wait_for(all_ready.wait(), 120)
        cpu0 = sum(_cpu(p) for p in serves)
        for n in range(posts):
            t0 = time.monotonic()
            posted = await service.post(
                author=POSTER,
                text=f"post {n}",
                item_number=number,
                kind=ConversationKind.INTERNAL,
            )
            started[posted.message_id] = t0
            feed_start[posted.message_id] = t0
            await asyncio.sleep(gap)
        deadline = time.monotonic() + 120
        while any(len(arrived.get(m, ())) < len(tokens) for m in started):
            if time.monotonic() > deadline:
                raise SystemExit("not every client got every event")
            await asyncio.sleep(0.05)
        cpu = sum(_cpu(p) for p in serves) - cpu0
        for task in tasks:
            task.cancel()
        for ws in sockets:
            await ws.close()
    await service.close()
    for mid, times in arrived.items():
        if len(times) != len(tokens):
            raise SystemExit(f"message {mid}: {len(times)} arrivals for {len(tokens)} clients")
    latencies = [(t - started[m]) * 1e3 for m, times in arrived.items() for t in times]
    feed = [(heard[m] - feed_start[m]) * 1e3 for m in started if m in heard]
    return latencies, feed, cpu / posts * 1e3


def _cpu(proc: subprocess.Popen[str]) -> float:
    times = psutil.Process(proc.pid).cpu_times()
    return times.user + times.system


def _round(
    cluster: PostgresCluster, serves: int, clients: int, posts: int, gap: float, tmp: Path
) -> Round:
    name = cluster.create_database()
    data_dir = tmp / f"{name}"
    data_dir.mkdir()
    procs: list[subprocess.Popen[str]] = []
    try:
        url = service_url(cluster.url(name))
        number, tokens = asyncio.run(_seed(url, clients))
        procs, bases = _start_serves(url, data_dir, serves)
        latencies, feed, cpu = asyncio.run(_measure(url, bases, tokens, number, posts, gap, procs))
        latencies.sort()
        return Round(
            serves,
            clients,
            statistics.median(latencies),
            latencies[int(len(latencies) * 0.99) - 1],
            statistics.median(feed),
            cpu,
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
        cluster.drop_database(name)


def main() -> None:
    import tempfile

    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clients", default="50,200", help="client counts, comma-separated")
    p.add_argument("--posts", type=int, default=40, help="posts per round")
    p.add_argument("--gap", type=float, default=0.1, help="seconds between posts")
    p.add_argument("--rounds", type=int, default=2, help="rounds of each")
    p.add_argument(
        "--agents", type=int, default=0, help="N agents that post and mark seen (_events_agents.py)"
    )
    p.add_argument("--serves", default="2,1", help="with --agents: serve counts, comma-separated")
    p.add_argument("--per-item", type=int, default=10, help="with --agents: followers an item")
    p.add_argument("--rate", type=float, default=3.0, help="with --agents: posts a second")
    p.add_argument("--seconds", type=float, default=30.0, help="with --agents: posting time")
    p.add_argument("--seen-share", type=float, default=0.6, help="with --agents: share seen")
    args = p.parse_args()
    if args.agents:
        _agents_mode(args)
        return
    counts = [int(c) for c in args.clients.split(",")]
    posts, rounds = (10, 1) if args.quick else (args.posts, args.rounds)
    if args.quick:
        counts = [10]
    try:
        cluster = start_cluster(migrate)
    except PostgresUnavailable as exc:
        raise SystemExit(f"no PostgreSQL here: {exc}") from exc
    figures: dict[tuple[int, int], list[Round]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-events-"))
    try:
        for clients in counts:
            for r in range(rounds):
                for serves in (1, 2) if r % 2 == 0 else (2, 1):
                    got = _round(cluster, serves, clients, posts, args.gap, tmp)
                    figures.setdefault((serves, clients), []).append(got)
                    print(
                        f"   {clients} clients, {serves} serve(s), round {r + 1}/{rounds}:"
                        f" post -> event p50 {got.p50_ms:.0f} ms, p99 {got.p99_ms:.0f} ms"
                        f" (change feed alone p50 {got.feed_p50_ms:.1f} ms);"
                        f" serve CPU {got.serve_cpu_ms_per_post:.1f} ms a post;"
                        f" every event once; load average {load_average()}"
                    )
                    sys.stdout.flush()
    finally:
        cluster.stop()
    med = statistics.median
    print(f"== post -> event, {posts} posts a round, one every {args.gap} s, {rounds} rounds")
    for (serves, clients), got in sorted(figures.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        p50 = med(r.p50_ms for r in got)
        feed = med(r.feed_p50_ms for r in got)
        print(
            f"   {clients} clients, {serves} serve(s): p50 {p50:.0f} ms,"
            f" p99 {med(r.p99_ms for r in got):.0f} ms,"
            f" serve CPU {med(r.serve_cpu_ms_per_post for r in got):.1f} ms a post;"
            f" ratio to the change feed alone (p50 {feed:.1f} ms): {p50 / feed:.1f}"
        )
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")


def _agents_mode(args: argparse.Namespace) -> None:
    import tempfile

    from _events_agents import Shape, run_agents, summary

    shape = Shape(args.agents, args.per_item, args.rate, args.seconds, args.seen_share)
    if args.quick:
        shape = Shape(20, 10, 2.0, 5.0, args.seen_share)
    try:
        cluster = start_cluster(migrate)
    except PostgresUnavailable as exc:
        raise SystemExit(f"no PostgreSQL here: {exc}") from exc
    tmp = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    try:
        serves = [int(s) for s in args.serves.split(",")]
        figures = run_agents(cluster, shape, serves, 1 if args.quick else args.rounds, tmp)
    finally:
        cluster.stop()
    summary(figures, shape)
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
