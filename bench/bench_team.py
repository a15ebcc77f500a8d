"""Desktops in a team (issue 11 "Measure"), through two `deskbell serve` on one PostgreSQL.

A private PostgreSQL cluster (tests/support/postgres.py); one database holds Ann, Bob and Cy
(agents) and `--items` items they all follow; two serve processes run on it. Sections:

- **bubble**: Ann's replica (this process, on serve 1) posts `--posts` messages, one at a
  time, `--gap` s apart, each after the last was seen everywhere. Bob's replica, a process of
  its own on serve 2 (tests/support/team_replica_process.py), writes its counts to a state
  file with the time they changed; latency = that time - just before Ann's `post()` call.
  Baseline, for the same posts: a plain `/v1/events` client for Bob (a process of its own, on
  serve 2) that notes each message event's arrival. p50/p99 of both, their ratio, and each
  observer process's CPU per post (so the replica's own cost shows).
- **catch-up**: Bob's replica is loaded once and closed; then Cy posts across every item's
  conversation and Bob's other device marks some of them seen (`--events` in all, 70 % posts,
  30 % seen marks, through the service on PostgreSQL, as a day offline); Bob's replica opens
  and follows the stream from its cursor: seconds from `TeamSync.start()` until
  `wait_current()` returns, and the replica's CPU (this process; the serves are their own).
  Baseline, interleaved: an empty replica loading the same workspace from the snapshot
  (bench/bench_team_catchup.py's `_current`, which this reuses).
- **idle**: Bob's replica in a process of its own, connected and current, settled, then
  measured from /proc over `--seconds` (CPU as a share of one core; wake-ups = voluntary +
  involuntary context switches of all its threads, tests/support/proc_stats.py), against an
  idle solo desktop service (`Service.open` + `start()` on a local workspace), interleaved
  (replica, solo, solo, replica). Aim: ≤ 0.2 % and ≤ 2 wake-ups/s.
- **window**: start → window shown with data (bench/bench_desktop_start.py's measure: the
  state file's first write, CPU from /proc) of the desktop in team mode against local mode on
  the same data: bench/bench_desktop.py's workspace (`--window-messages`), copied; one copy is
  the local desktop's, a `deskbell serve` runs on the other and Ann's desktop signs in to it
  (its replica loaded by a first start, so each measured start is a returning user's).
  Interleaved pairs. Aim: within 10 %.

    .venv/bin/python bench/bench_team.py [--quick] [--only bubble,catchup,idle,window]
        [--posts 200] [--events 10000] [--rounds 1] [--seconds 30] [--window-messages 20000]

The load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from _common import ROOT, load_average, parser
from bench_desktop import build_database
from bench_desktop_start import Start, _start
from bench_events import _start_serves
from bench_team_catchup import _IDLE_REPLICA, _current, _idle

from services.api import (
    LOCAL_OPERATOR,
    AccountStore,
    Service,
    open_replica,
    sign_in_to_team,
)
from services.server_client import ServerClient, path
from services.store.db import sqlite_url
from tests.support.databases import migrate
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from tests.support.service_url import service_url
from tests.support.world import seed

ANN, BOB, CY = "ann@example.com", "bob@example.com", "cy@example.com"
PW = "correct horse battery"
DEADLINE_S = 300.0

# Bob's plain event stream: "ready", then "<message id> <epoch time>" per message event.
_EVENTS_CLIENT = """
import asyncio, sys, time
from services.server_client import events

async def main():
    async for event in events(sys.argv[1], sys.argv[2]):
        if event["type"] == "ready":
            print("ready", flush=True)
        elif event["type"] == "message":
            print(event["message"]["id"], time.time(), flush=True)

asyncio.run(main())
"""
# An idle solo desktop's service: a local workspace, started as the desktop starts it.
_SOLO = """
import asyncio, sys
from pathlib import Path
from services.api import Service

async def main():
    service = await Service.open(data_dir=Path(sys.argv[1]))
    await service.start()
    print("current", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@dataclass(frozen=True)
class Team:
    url: str
    bases: list[str]
    ids: dict[str, int]
    conversations: list[int]
    tokens: dict[str, str]  # "ann", "bob", "bob-events", "bob-idle"
    serve_pids: list[int]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _spawn(*args: str) -> subprocess.Popen[str]:
    """An observer process with its stdin and stdout piped to this one."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def _seed(url: str, items: int) -> tuple[dict[str, int], list[int]]:
    service = await Service.open(url=url)
    try:
        await service.set_config("unseen_delay_s", "86400")  # no email in the measurement
        ids = {}
        for email in (ANN, BOB, CY):
            ids[email] = (await service.add_person(email=email, name=email.split("@")[0])).id
            await service.set_password(acting=LOCAL_OPERATOR, email=email, password=PW)
        conversations = []
        for n in range(items):
            item = await service.create_item(title=f"Item {n}", followers=[ANN, BOB, CY])
            conversations.append(item.internal_conversation_id)
        return ids, conversations
    finally:
        await service.close()


async def _tokens(bases: list[str]) -> dict[str, str]:
    tokens = {}
    for name, email, base in (
        ("ann", ANN, bases[0]),
        ("bob", BOB, bases[1]),
        ("bob-events", BOB, bases[1]),
        ("bob-idle", BOB, bases[1]),
    ):
        async with ServerClient(base) as client:
            await client.sign_in(email=email, password=PW, device=name)
            assert client.token is not None
            tokens[name] = client.token
    return tokens


class _Lines:
    """A child's stdout lines, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    async def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while len(self.lines) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"an observer stopped or fell behind: {self.lines[-3:]}")
            await asyncio.sleep(0.002)


async def _bubble(team: Team, posts: int, gap: float, tmp: Path) -> None:
    state_file = tmp / "bob-state.json"
    replica = _spawn(
        "-m",
        "tests.support.team_replica_process",
        team.bases[1],
        team.tokens["bob"],
        str(team.ids[BOB]),
        str(tmp / "bob-bubble"),
        str(state_file),
    )
    plain = _spawn("-c", _EVENTS_CLIENT, team.bases[1], team.tokens["bob-events"])
    client = ServerClient(team.bases[0], team.tokens["ann"])
    service, sync = await open_replica(data_dir=tmp / "ann", client=client, person_id=team.ids[ANN])
    try:
        replica_lines, plain_lines = _Lines(replica), _Lines(plain)
        await replica_lines.wait_for(1)
        await plain_lines.wait_for(1)
        await service.start(mail=False)
        await sync.start()
        await sync.wait_current()
        by_replica: list[float] = []
        by_events: list[float] = []
        cpu0 = (_cpu(replica.pid), _cpu(plain.pid))
        for n in range(posts):
            t0 = time.time()
            await service.post(
                author=ANN,
                text=f"bubble {n}",
                conversation_id=team.conversations[n % len(team.conversations)],
            )
            deadline = time.monotonic() + DEADLINE_S
            while True:
                doc = json.loads(state_file.read_text())
                if doc["total"] == n + 1:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"Bob's replica never showed post {n}: {doc}")
                await asyncio.sleep(0.002)
            await plain_lines.wait_for(n + 2)
            by_replica.append((doc["at"] - t0) * 1e3)
            by_events.append((float(plain_lines.lines[n + 1].split()[1]) - t0) * 1e3)
            await asyncio.sleep(gap)
        cpu = (_cpu(replica.pid) - cpu0[0], _cpu(plain.pid) - cpu0[1])
    finally:
        await sync.stop()
        await service.close()
        await client.close()
        for proc in (replica, plain):
            proc.kill()
            proc.communicate()
    p50, p99 = statistics.median(by_replica), _pct(by_replica, 0.99)
    b50, b99 = statistics.median(by_events), _pct(by_events, 0.99)
    print(
        f"   Ann's post -> Bob's replica counts: p50 {p50:.0f} ms, p99 {p99:.0f} ms;"
        f" CPU {cpu[0] / posts * 1e3:.1f} ms a post; load {load_average()}"
    )
    print(
        f"   same posts -> plain /v1/events client: p50 {b50:.0f} ms, p99 {b99:.0f} ms;"
        f" CPU {cpu[1] / posts * 1e3:.1f} ms a post; load {load_average()}"
    )
    print(f"   ratio replica / plain client: p50 {p50 / b50:.2f}, p99 {p99 / b99:.2f}")


async def _day_offline(team: Team, events: int) -> int:
    """Cy posts, Bob's other device marks some seen: `events` writes Bob's replica must apply.
    Returns how far the event stream moved."""
    async with ServerClient(team.bases[0], team.tokens["ann"]) as client:
        before = (await client.call("GET", path("sync", "position")))["position"]
    service = await Service.open(url=team.url)
    try:
        posts = events * 7 // 10
        posted: list[int] = []
        for n in range(posts):
            result = await service.post(
                author=CY,
                text=f"while away {n}",
                conversation_id=team.conversations[n % len(team.conversations)],
            )
            posted.append(result.message_id)
        for message_id in posted[: events - posts]:
            await service.mark_seen(person_id=team.ids[BOB], message_ids=[message_id])
    finally:
        await service.close()
    async with ServerClient(team.bases[0], team.tokens["ann"]) as client:
        after = (await client.call("GET", path("sync", "position")))["position"]
    return int(after - before)


async def _catch_up(team: Team, events: int, rounds: int, tmp: Path) -> None:
    token, bob = team.tokens["bob"], team.ids[BOB]
    await _current(team.bases[1], token, bob, tmp / "bob")  # loaded, then closed
    caught: list[tuple[float, float]] = []
    fresh: list[tuple[float, float]] = []
    for r in range(rounds):
        started = time.perf_counter()
        moved = await _day_offline(team, events)
        print(
            f"   round {r + 1}: {events:,} writes ({moved:,} stream positions) in"
            f" {time.perf_counter() - started:.0f} s; load {load_average()}"
        )
        order = ["catch-up", "snapshot"] if r % 2 == 0 else ["snapshot", "catch-up"]
        for what in order:
            serve_cpu = sum(_cpu(pid) for pid in team.serve_pids)
            if what == "catch-up":
                got = await _current(team.bases[1], token, bob, tmp / "bob")
                caught.append(got)
            else:
                got = await _current(team.bases[1], token, bob, tmp / f"fresh-{r}")
                fresh.append(got)
            serve_cpu = sum(_cpu(pid) for pid in team.serve_pids) - serve_cpu
            print(
                f"   round {r + 1} {what}: {got[0]:.2f} s until current, replica CPU"
                f" {got[1]:.2f} s, serves' CPU {serve_cpu:.2f} s; load {load_average()}"
            )
    wall = statistics.median(c[0] for c in caught)
    base = statistics.median(f[0] for f in fresh)
    print(
        f"   median catch-up {wall:.2f} s ({events / wall:,.0f} writes/s), CPU"
        f" {statistics.median(c[1] for c in caught):.2f} s; empty replica from the snapshot"
        f" {base:.2f} s; ratio {wall / base:.2f}"
    )


async def _idle_pair(team: Team, seconds: float, runs: int, tmp: Path) -> None:
    solo_dir = tmp / "solo"
    solo_dir.mkdir()
    service = await Service.open(data_dir=solo_dir)
    await seed(service)
    await service.close()
    replica = [
        sys.executable,
        "-c",
        _IDLE_REPLICA,  # the replica process bench_team_catchup.py measures, here on serve 2
        team.bases[1],
        team.tokens["bob-idle"],
        str(team.ids[BOB]),
        str(tmp / "bob-idle"),
    ]
    solo = [sys.executable, "-c", _SOLO, str(solo_dir)]
    plan = [(replica, "team replica"), (solo, "solo desktop service")]
    plan = [*plan, *reversed(plan)][:runs]
    for n, (cmd, name) in enumerate(plan):
        usage = await asyncio.to_thread(_idle, cmd, seconds, "current")
        print(
            f"   {n + 1}. {name}: CPU {usage.cpu_percent:.3f} % of a core,"
            f" {usage.wakeups_per_s:.2f} wake-ups/s ({usage.threads} threads);"
            f" load {load_average()}"
        )


def _window_starts(messages: int, runs: int, tmp: Path) -> None:
    # A keyring of the run's own for the desktop's token: the person's own is left alone.
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    os.environ["XDG_DATA_HOME"] = str(tmp / "keyring")
    local, served, desk = tmp / "local", tmp / "served", tmp / "team-desktop"
    local.mkdir(parents=True)
    build_database(local, conversations=max(20, messages // 20), messages=messages, big=1_000)
    shutil.copytree(local, served)
    asyncio.run(_set_password(served))
    serve, bases = _start_serves(sqlite_url(served), tmp, 1)
    try:
        new = asyncio.run(
            sign_in_to_team(server_url=bases[0], email=ANN, password=PW, device="bench")
        )
        AccountStore(desk).save(new.account, new.token)
        state = tmp / "window.json"
        env = {k: v for k, v in _env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "bytecode")  # as installed: compiled once
        team = [sys.executable, "-m", "app.cli", "--data-dir", str(desk)]
        solo = [sys.executable, "-m", "app.cli", "--data-dir", str(local), "--as", ANN]
        first = _start(team, state, env)  # loads the replica from the snapshot
        print(f"   first team start (empty replica, snapshot): {first.wall_s:.2f} s")
        _start(solo, state, env)  # warm the page cache and the bytecode
        got: dict[str, list[Start]] = {"team": [], "local": []}
        for r in range(runs):
            for name in ("local", "team") if r % 2 == 0 else ("team", "local"):
                got[name].append(_start(team if name == "team" else solo, state, env))
            t, lo = got["team"][-1], got["local"][-1]
            print(
                f"   pair {r + 1}/{runs}: team {t.wall_s:.2f} s, {t.cpu_s:.2f} s CPU;"
                f" local {lo.wall_s:.2f} s, {lo.cpu_s:.2f} s CPU; load {load_average()}"
            )
    finally:
        for proc in serve:
            proc.terminate()
            proc.wait(timeout=60)
    for field, unit in (("wall_s", "s wall"), ("cpu_s", "s CPU")):
        t_v = statistics.median(getattr(s, field) for s in got["team"])
        l_v = statistics.median(getattr(s, field) for s in got["local"])
        print(f"   {unit}: team {t_v:.2f}, local {l_v:.2f}: ratio {t_v / l_v:.2f} (aim ≤ 1.10)")


async def _set_password(folder: Path) -> None:
    service = await Service.open(data_dir=folder)
    try:
        await service.set_password(acting=LOCAL_OPERATOR, email=ANN, password=PW)
    finally:
        await service.close()


async def _run(cluster: PostgresCluster, args: argparse.Namespace, tmp: Path) -> None:
    only = set(args.only.split(","))
    quick = args.quick
    name = cluster.create_database()
    url = service_url(cluster.url(name))
    ids, conversations = await _seed(url, args.items)
    data_dir = tmp / "serve"
    data_dir.mkdir()
    serves, bases = _start_serves(url, data_dir, 2)
    try:
        team = Team(url, bases, ids, conversations, await _tokens(bases), [p.pid for p in serves])
        if "bubble" in only:
            posts = 20 if quick else args.posts
            print(f"== bubble: {posts} posts by Ann on serve 1, Bob on serve 2")
            await _bubble(team, posts, args.gap, tmp)
        if "catchup" in only:
            events = 300 if quick else args.events
            rounds = 1 if quick else args.rounds
            print(f"== catch-up after a day offline: {events:,} writes waiting, {rounds} round(s)")
            await _catch_up(team, events, rounds, tmp)
        if "idle" in only:
            seconds = 3.0 if quick else args.seconds
            print(f"== idle over {seconds:g} s: connected replica vs solo desktop service")
            await _idle_pair(team, seconds, 2 if quick else 4, tmp)
        if "window" in only:
            messages = 4_000 if quick else args.window_messages
            print(f"== start -> window shown with data, {messages:,} messages: team vs local")
            await asyncio.to_thread(_window_starts, messages, 2 if quick else 5, tmp / "window")
    finally:
        for proc in serves:
            proc.terminate()
            proc.wait(timeout=60)
        cluster.drop_database(name)
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", default="bubble,catchup,idle,window", help="sections, comma-separated")
    p.add_argument("--items", type=int, default=20, help="items all three agents follow")
    p.add_argument("--posts", type=int, default=200, help="bubble: posts measured")
    p.add_argument("--gap", type=float, default=0.05, help="bubble: seconds between posts")
    p.add_argument("--events", type=int, default=10_000, help="catch-up: writes waiting")
    p.add_argument("--rounds", type=int, default=1, help="catch-up: rounds")
    p.add_argument("--seconds", type=float, default=30.0, help="idle: measurement length")
    p.add_argument("--window-messages", type=int, default=20_000, help="window: messages")
    args = p.parse_args()
    try:
        cluster = start_cluster(migrate)
    except PostgresUnavailable as exc:
        raise SystemExit(f"no PostgreSQL here: {exc}") from exc
    try:
        with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
            asyncio.run(_run(cluster, args, Path(tmp)))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
