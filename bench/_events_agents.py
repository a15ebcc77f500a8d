"""`bench_events.py --agents N`: N simulated agents that post and mark seen through the API
(issue 10's first measure).

Each round a fresh database holds N agents in items of `--per-item` followers (one item each),
every agent with a device session (written directly with a known token, as in the fan-out
rounds), SMTP pointed at an aiosmtpd catcher on loopback in its own process
(`_common.catcher`), and a 2 s unseen delay. A serve round starts one or two `deskbell serve
--listen`; every agent follows `/api/v1/events` (split evenly across the serves) and, during
`--seconds`, some agent posts in its item through `POST /api/v1/items/{number}/messages` with
its own token, `--rate` posts a second overall (each post its own task, so a slow answer does
not slow the schedule). An agent that receives a post in its item marks it seen through
`POST /api/v1/seen` after 0.3-1.5 s for `--seen-share` of them; the rest fall due and are
emailed. Latency: from just before the post call to the event's arrival at each other follower
of the item (each must get it exactly once, else the bench fails).

A local round does the same schedule in this process through a started `Service` on a
database of the same shape (`Service.post`, `Service.mark_seen` for the same share and
delays, mail to its own catcher): its CPU per post is this process's user+system over the
posting phase, against the serves' (summed) over theirs. The posting phase ends when every
post is answered, every follower got it (serve rounds) and every seen mark is done; emails due
in it are part of both figures. Before it, the same processes' CPU over 5 s with everyone
connected and nobody posting is measured too, so each figure is also given net of that idle
work. Rounds interleave (serves..., local, then reversed).

After each round the bench waits until no delivery is pending and every notification email is
sent, then checks that each one the database says was sent arrived exactly once at the catcher
(by Message-ID), and fails otherwise.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from _common import Catcher, catcher, load_average
from bench_events import _cpu, _sessions, _start_serves
from sqlalchemy import select

from services.api import ConversationKind, Service
from services.domain.model import DeliveryState, EmailStatus
from services.store.database import Tx
from services.store.models import Delivery, Email
from tests.support.postgres import PostgresCluster
from tests.support.service_url import service_url

UNSEEN_DELAY_S = "2"
SEEN_AFTER_S = (0.3, 1.5)  # a human glancing at the new message
DRAIN_S = 300  # generous: the machine is shared
IDLE_S = 5.0  # CPU with everyone connected and nobody posting: the background work's share


@dataclass(frozen=True)
class Shape:
    agents: int
    per_item: int
    rate: float
    seconds: float
    seen_share: float


@dataclass(frozen=True)
class World:
    numbers: list[int]  # item number of each agent
    person_ids: list[int]
    tokens: list[str]


@dataclass(frozen=True)
class Phase:
    cpu_ms_per_post: float
    idle_ms_per_s: float
    seconds: float
    posts: int


@dataclass(frozen=True)
class AgentRound:
    serves: int  # 0: the local round (Service.post in this process)
    posts: int
    latencies_ms: list[float]
    cpu_ms_per_post: float
    idle_ms_per_s: float  # the same CPU with nobody posting
    phase_s: float
    frames: int  # events received by all agents in the posting phase (serve rounds)
    emails: int
    seen: int
    load: str


def _email(n: int) -> str:
    return f"agent{n}@example.com"


async def _seed(url: str, shape: Shape, smtp_port: int) -> World:
    service = await Service.open(url=url)
    try:
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(smtp_port)),
            ("smtp.security", "none"),
            ("unseen_delay_s", UNSEEN_DELAY_S),
        ):
            await service.set_config(key, value)
        ids = [
            (await service.add_person(email=_email(n), name=f"Agent {n}")).id
            for n in range(shape.agents)
        ]
        numbers = []
        for start in range(0, shape.agents, shape.per_item):
            group = range(start, min(shape.agents, start + shape.per_item))
            item = await service.create_item(
                title=f"Item {start // shape.per_item}", followers=[_email(n) for n in group]
            )
            numbers.extend(item.number for _ in group)
        tokens = [secrets.token_urlsafe(32) for _ in ids]
        await service.db.write(_sessions, ids, tokens)
        return World(numbers, ids, tokens)
    finally:
        await service.close()


def _schedule(shape: Shape, rng: random.Random) -> list[int]:
    """Who posts, one per 1/rate s."""
    return [rng.randrange(shape.agents) for _ in range(int(shape.seconds * shape.rate))]


async def _drive(
    shape: Shape,
    world: World,
    schedule: list[int],
    post: Callable[[int, int], Awaitable[int]],
) -> list[tuple[int, int, float]]:
    """Post on schedule, each post its own task; returns (message id, author, start)."""
    done: list[tuple[int, int, float]] = []

    async def one(k: int, author: int) -> None:
        t0 = time.monotonic()
        done.append((await post(author, k), author, t0))

    tasks = []
    begin = time.monotonic()
    for k, author in enumerate(schedule):
        await asyncio.sleep(max(0.0, begin + k / shape.rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(k, author)))
    await asyncio.gather(*tasks)
    return done


def _followers(world: World, author: int) -> list[int]:
    return [n for n, number in enumerate(world.numbers) if number == world.numbers[author]]


async def _serve_round(
    url: str,
    bases: list[str],
    shape: Shape,
    world: World,
    schedule: list[int],
    rng: random.Random,
    serves: list[subprocess.Popen[str]],
) -> tuple[list[float], Phase, int]:
    arrived: list[dict[int, list[float]]] = [{} for _ in world.tokens]
    frames = 0
    seen_tasks: list[asyncio.Task[None]] = []
    ready = 0
    all_ready = asyncio.Event()
    by_id = {pid: n for n, pid in enumerate(world.person_ids)}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        def headers(n: int) -> dict[str, str]:
            return {"Authorization": f"Bearer {world.tokens[n]}"}

        async def mark_seen(n: int, message_id: int, after: float) -> None:
            await asyncio.sleep(after)
            async with http.post(
                f"{bases[n % len(bases)]}/api/v1/seen",
                json={"message_ids": [message_id]},
                headers=headers(n),
            ) as answer:
                if answer.status != 200:
                    raise SystemExit(f"seen: {answer.status} {await answer.text()}")

        async def agent(n: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            nonlocal ready, frames
            async for frame in ws:
                frames += 1
                event = json.loads(frame.data)
                if event["type"] == "ready":
                    ready += 1
                    if ready == len(world.tokens):
                        all_ready.set()
                elif event["type"] == "message" and event.get("action") == "posted":
                    message = event["message"]
                    arrived[n].setdefault(message["id"], []).append(time.monotonic())
                    mine = message["item_number"] == world.numbers[n]
                    author = by_id.get((message["author"] or {}).get("id"))
                    if mine and author != n and rng.random() < shape.seen_share:
                        after = rng.uniform(*SEEN_AFTER_S)
                        seen_tasks.append(asyncio.create_task(mark_seen(n, message["id"], after)))

        async def post(author: int, k: int) -> int:
            async with http.post(
                f"{bases[author % len(bases)]}/api/v1/items/{world.numbers[author]}/messages",
                json={"kind": "internal", "text": f"post {k} by agent {author}"},
                headers=headers(author),
            ) as answer:
                if answer.status != 201:
                    raise SystemExit(f"post: {answer.status} {await answer.text()}")
                return int((await answer.json())["message_id"])

        sockets = [
            await http.ws_connect(f"{bases[n % len(bases)]}/api/v1/events", headers=headers(n))
            for n in range(len(world.tokens))
        ]
        listening = [asyncio.create_task(agent(n, ws)) for n, ws in enumerate(sockets)]
        await asyncio.wait_for(all_ready.wait(), 120)
        idle0 = sum(_cpu(p) for p in serves)
        await asyncio.sleep(IDLE_S)
        cpu0 = sum(_cpu(p) for p in serves)
        idle = (cpu0 - idle0) / IDLE_S * 1e3
        frames, t_begin = 0, time.monotonic()
        posted = await _drive(shape, world, schedule, post)
        deadline = time.monotonic() + 120
        expected = [
            (mid, f, t0)
            for mid, author, t0 in posted
            for f in _followers(world, author)
            if f != author
        ]
        while any(mid not in arrived[f] for mid, f, _ in expected):
            if time.monotonic() > deadline:
                raise SystemExit("not every follower got every post")
            await asyncio.sleep(0.05)
        while seen_tasks:
            await seen_tasks.pop()
        cpu = sum(_cpu(p) for p in serves) - cpu0
        phase = Phase(cpu / len(posted) * 1e3, idle, time.monotonic() - t_begin, len(posted))
        for task in listening:
            task.cancel()
        for ws in sockets:
            await ws.close()
    latencies = []
    for mid, f, t0 in expected:
        times = arrived[f][mid]
        if len(times) != 1:
            raise SystemExit(f"message {mid}: {len(times)} events at agent {f}")
        latencies.append((times[0] - t0) * 1e3)
    return latencies, phase, frames


async def _local_round(
    url: str, shape: Shape, world: World, schedule: list[int], rng: random.Random
) -> Phase:
    service = await Service.open(url=url)
    await service.start()
    seen_tasks: list[asyncio.Task[None]] = []

    async def mark_seen(person_id: int, message_id: int, after: float) -> None:
        await asyncio.sleep(after)
        await service.mark_seen(person_id=person_id, message_ids=[message_id])

    async def post(author: int, k: int) -> int:
        result = await service.post(
            author=_email(author),
            text=f"post {k} by agent {author}",
            item_number=world.numbers[author],
            kind=ConversationKind.INTERNAL,
        )
        for person_id in result.recipients:
            if rng.random() < shape.seen_share:
                after = rng.uniform(*SEEN_AFTER_S)
                seen_tasks.append(
                    asyncio.create_task(mark_seen(person_id, result.message_id, after))
                )
        return result.message_id

    try:
        me = psutil.Process()
        idle0 = me.cpu_times()
        await asyncio.sleep(IDLE_S)
        before = me.cpu_times()
        idle = (before.user + before.system - idle0.user - idle0.system) / IDLE_S * 1e3
        t_begin = time.monotonic()
        posted = await _drive(shape, world, schedule, post)
        while seen_tasks:
            await seen_tasks.pop()
        after = me.cpu_times()
        cpu = after.user + after.system - before.user - before.system
        phase = Phase(cpu / len(posted) * 1e3, idle, time.monotonic() - t_begin, len(posted))
        await _drained(service, DRAIN_S)
    finally:
        await service.close()
    return phase


def _outstanding(tx: Tx) -> tuple[int, list[tuple[str, str]], int]:
    pending = tx.conn.execute(
        select(Delivery.id).where(Delivery.state == DeliveryState.PENDING.value)
    ).all()
    seen = tx.conn.execute(
        select(Delivery.id).where(Delivery.state == DeliveryState.SEEN.value)
    ).all()
    emails = tx.conn.execute(
        select(Email.message_id, Email.status).where(Email.kind == "notification")
    ).all()
    return len(pending), [(str(m).strip("<>"), s) for m, s in emails], len(seen)


async def _drained(service: Service, timeout_s: float) -> tuple[list[str], int]:
    """Wait until no delivery is pending and every notification email has left; returns the
    sent emails' Message-IDs and how many deliveries were seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending, emails, seen = await service.db.read(_outstanding)
        if pending == 0 and all(s == EmailStatus.SENT.value for _, s in emails):
            return [m for m, _ in emails], seen
        if time.monotonic() > deadline:
            raise SystemExit(
                f"emails not all sent: {pending} pending, {Counter(s for _, s in emails)}"
            )
        await asyncio.sleep(0.5)


async def _sent(url: str) -> tuple[list[str], int]:
    service = await Service.open(url=url)
    try:
        return await _drained(service, DRAIN_S)
    finally:
        await service.close()


def _check_once(sent: list[str], got: Catcher) -> None:
    received = Counter(mid for _, mid in got.arrivals())
    if set(received) != set(sent) or any(n != 1 for n in received.values()):
        twice = {m: n for m, n in received.items() if n != 1}
        missing = set(sent) - set(received)
        extra = set(received) - set(sent)
        raise SystemExit(f"emails not once each: twice {twice}, missing {missing}, extra {extra}")


def agent_round(
    cluster: PostgresCluster, serves: int, shape: Shape, seed: int, tmp: Path
) -> AgentRound:
    name = cluster.create_database()
    data_dir = tmp / name
    data_dir.mkdir()
    procs: list[subprocess.Popen[str]] = []
    rng = random.Random(seed)
    schedule = _schedule(shape, rng)
    try:
        url = service_url(cluster.url(name))
        with catcher(data_dir) as got:
            world = asyncio.run(_seed(url, shape, got.port))
            latencies: list[float] = []
            frames = 0
            if serves:
                procs, bases = _start_serves(url, data_dir, serves)
                latencies, phase, frames = asyncio.run(
                    _serve_round(url, bases, shape, world, schedule, rng, procs)
                )
            else:
                phase = asyncio.run(_local_round(url, shape, world, schedule, rng))
            load = load_average()
            sent, seen = asyncio.run(_sent(url))
            _check_once(sent, got)
        latencies.sort()
        return AgentRound(
            serves,
            phase.posts,
            latencies,
            phase.cpu_ms_per_post,
            phase.idle_ms_per_s,
            phase.seconds,
            frames,
            len(sent),
            seen,
            load,
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
        cluster.drop_database(name)


def _p(latencies: list[float], q: float) -> float:
    return latencies[max(0, int(len(latencies) * q) - 1)]


def _net(got: AgentRound) -> float:
    """CPU a post less what the same processes spend idle over the same time."""
    return got.cpu_ms_per_post - got.idle_ms_per_s * got.phase_s / got.posts


def describe(got: AgentRound) -> str:
    where = f"{got.serves} serve(s)" if got.serves else "local Service.post"
    lat = (
        f"post -> follower event p50 {statistics.median(got.latencies_ms):.0f} ms,"
        f" p99 {_p(got.latencies_ms, 0.99):.0f} ms over {len(got.latencies_ms)}; "
        if got.latencies_ms
        else ""
    )
    return (
        f"{where}: {got.posts} posts; {lat}CPU {got.cpu_ms_per_post:.1f} ms a post"
        f" ({_net(got):.1f} net of the idle {got.idle_ms_per_s:.0f} ms CPU a second);"
        f"{f' {got.frames} events received;' if got.serves else ''}"
        f" {got.seen} deliveries seen, {got.emails} emails each received once;"
        f" load average {got.load}"
    )


def run_agents(
    cluster: PostgresCluster, shape: Shape, serve_counts: list[int], rounds: int, tmp: Path
) -> dict[int, list[AgentRound]]:
    figures: dict[int, list[AgentRound]] = {}
    for r in range(rounds):
        order = [*serve_counts, 0]
        for serves in order if r % 2 == 0 else order[::-1]:
            got = agent_round(cluster, serves, shape, seed=r, tmp=tmp)
            figures.setdefault(serves, []).append(got)
            print(f"   round {r + 1}/{rounds}, {describe(got)}", flush=True)
    return figures


def summary(figures: dict[int, list[AgentRound]], shape: Shape) -> None:
    med = statistics.median
    print(
        f"== {shape.agents} agents, {shape.per_item} per item, {shape.rate} posts/s for"
        f" {shape.seconds} s, {shape.seen_share:.0%} marked seen after 0.3-1.5 s"
    )
    local = figures.get(0)
    for serves, got in sorted(figures.items(), reverse=True):
        cpu, net = med(r.cpu_ms_per_post for r in got), med(_net(r) for r in got)
        cpu_text = f"CPU {cpu:.1f} ms a post ({net:.1f} net of idle)"
        if local and serves:
            cpu_text += (
                f"; {cpu / med(r.cpu_ms_per_post for r in local):.1f}x"
                f" ({net / med(_net(r) for r in local):.1f}x net) the local post"
            )
        if serves:
            print(
                f"   {serves} serve(s): p50 {med(med(r.latencies_ms) for r in got):.0f} ms,"
                f" p99 {med(_p(r.latencies_ms, 0.99) for r in got):.0f} ms, serve {cpu_text}"
            )
        else:
            print(f"   local Service.post: {cpu_text} (this process)")
