"""Customer chat (issue 12): agent post -> the customer's page shows it, with 500 customer pages
connected to one `deskbell serve`; the page's weight and time to interactive in Chromium.

A fresh SQLite workspace: one agent and N customers, each with their own item and external
conversation, each with a device session (written directly with a known token, as the chat's
cookie holds it: N emailed links would only measure email). One `serve --listen` runs on it.

1. **Live posts.** N clients hold the chat's live stream open (`/chat/live`, the session cookie
   and the server's Origin, as the page's script does); a few of them (`--browsers`) are real
   headless Chromium pages, which note when a message's element appears. The agent posts
   through the HTTP API into random conversations, one every `--gap` s; latency runs from
   just before the POST to the arrival at that customer's stream (or the element on the page).
   Baseline, in the same run: the same posts with the same N customers following
   `/api/v1/events` with a Bearer token instead (the stream the desktop uses). Phases
   alternate chat, events, chat, events...
2. **First load.** A cold Chromium opens a conversation: bytes on the wire (compressed bodies
   plus headers, from DevTools' Network events) and navigation start -> the page live
   (`data-ready`), beside the same browser loading a bare page. Aim: under 100 KB, 0.5 s.

Printed: p50/p99 per phase, the serve's CPU per post and the phase's wall time, every message
arrived exactly once (checked, else the benchmark fails), the load average beside each figure.

    .venv/bin/python bench/bench_chat.py [--quick] [--pages 500] [--browsers 3] [--posts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import psutil
from _chat_pages import COOKIE, ShownPages, first_load
from _common import load_average, parser
from bench_events import _sessions, _start_serves

from services.api import ConversationKind, PersonKind, Service
from services.events import _last_position

AGENT = "agent@example.com"


@dataclass(frozen=True)
class World:
    agent_token: str
    tokens: list[str]  # customer n's session token
    conversations: list[int]  # customer n's conversation


@dataclass(frozen=True)
class Phase:
    stream: str  # "chat" or "events"
    latencies_ms: list[float]  # post -> the customer's stream
    page_ms: list[float]  # post -> the element on a real page
    cpu_ms_per_post: float
    wall_s: float
    load: str


def _customer(n: int) -> str:
    return f"customer{n}@example.org"


async def _seed(url: str, customers: int) -> World:
    service = await Service.open(url=url)
    try:
        await service.set_config("unseen_delay_s", "86400")  # no email in the measurement
        agent = await service.add_person(email=AGENT, name="Agent")
        ids, conversations = [], []
        for n in range(customers):
            person = await service.add_person(
                email=_customer(n), name=f"Customer {n}", kind=PersonKind.CUSTOMER
            )
            item = await service.create_item(title=f"Case {n}", followers=[AGENT, _customer(n)])
            opened = await service.post(
                author=AGENT, text="Hello", item_number=item.number, kind=ConversationKind.EXTERNAL
            )
            ids.append(person.id)
            conversations.append(opened.conversation_id)
        tokens = [secrets.token_urlsafe(32) for _ in range(customers + 1)]
        await service.db.write(_sessions, [agent.id, *ids], tokens)
        return World(tokens[0], tokens[1:], conversations)
    finally:
        await service.close()


async def _phase(
    url: str,
    base: str,
    world: World,
    stream: str,
    pages: ShownPages | None,
    posts: int,
    gap: float,
    serve: subprocess.Popen[str],
    rng: random.Random,
) -> Phase:
    """Connect every customer's stream (but those a real page holds), post, time arrivals."""
    service = await Service.open(url=url)
    try:
        after = await service.db.read(_last_position)
    finally:
        await service.close()
    held = set(pages.pages) if pages is not None else set()
    arrived: dict[int, list[float]] = {}
    ready = asyncio.Event()
    waiting = len(world.tokens) - len(held)

    async def follow(ws: aiohttp.ClientWebSocketResponse) -> None:
        nonlocal waiting
        async for frame in ws:
            event = json.loads(frame.data)
            if event["type"] == "ready":
                waiting -= 1
                if waiting == 0:
                    ready.set()
            elif event["type"] == "message":
                arrived.setdefault(event["message"]["id"], []).append(time.time())

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = []
        for n, token in enumerate(world.tokens):
            if world.conversations[n] in held:
                continue
            if stream == "chat":
                ws = await http.ws_connect(
                    f"{base}/chat/live?after={after}",
                    headers={"Cookie": f"{COOKIE}={token}", "Origin": base},
                )
            else:
                ws = await http.ws_connect(
                    f"{base}/api/v1/events?after={after}",
                    headers={"Authorization": f"Bearer {token}"},
                )
            sockets.append(ws)
        tasks = [asyncio.create_task(follow(ws)) for ws in sockets]
        await asyncio.wait_for(ready.wait(), 300)
        started: dict[int, float] = {}
        to_page: dict[int, int] = {}
        times0 = psutil.Process(serve.pid).cpu_times()
        wall0 = time.monotonic()
        for n in range(posts):
            # Every tenth post goes to a real page, when there are any (chat phases).
            if held and n % 10 == 0:
                conversation = sorted(held)[(n // 10) % len(held)]
            else:
                conversation = rng.choice(world.conversations)
                while conversation in held:
                    conversation = rng.choice(world.conversations)
            t0 = time.time()
            async with http.post(
                f"{base}/api/v1/conversations/{conversation}/messages",
                headers={"Authorization": f"Bearer {world.agent_token}"},
                json={"text": f"post {n}"},
            ) as response:
                body = await response.json()
                if response.status != 201:
                    raise SystemExit(f"post refused: {response.status} {body}")
            started[body["message_id"]] = t0
            if conversation in held:
                to_page[body["message_id"]] = conversation
            await asyncio.sleep(gap)
        page_ms = []
        if pages is not None:
            for message_id, conversation in to_page.items():
                shown = await pages.shown_at(conversation, message_id)
                page_ms.append((shown - started[message_id]) * 1e3)
        deadline = time.monotonic() + 120
        expected = {m for m in started if m not in to_page}
        while any(len(arrived.get(m, ())) < 1 for m in expected):
            if time.monotonic() > deadline:
                raise SystemExit(f"{stream}: not every post reached its customer")
            await asyncio.sleep(0.05)
        wall = time.monotonic() - wall0
        times1 = psutil.Process(serve.pid).cpu_times()
        for task in tasks:
            task.cancel()
        for ws in sockets:
            await ws.close()
    for message_id in expected:
        if len(arrived[message_id]) != 1:
            raise SystemExit(f"message {message_id} arrived {len(arrived[message_id])} times")
    strays = set(arrived) - expected
    if strays:
        raise SystemExit(f"{len(strays)} messages reached a customer they were not for")
    cpu = (times1.user + times1.system) - (times0.user + times0.system)
    return Phase(
        stream,
        sorted((arrived[m][0] - started[m]) * 1e3 for m in expected),
        sorted(page_ms),
        cpu / posts * 1e3,
        wall,
        load_average(),
    )


def _p99(values: list[float]) -> float:
    """The 99th percentile of sorted values (the largest of fewer than 100)."""
    return values[math.ceil(len(values) * 0.99) - 1] if values else float("nan")


def _describe(got: Phase) -> str:
    text = (
        f"p50 {statistics.median(got.latencies_ms):.0f} ms, p99 {_p99(got.latencies_ms):.0f} ms"
        f" ({len(got.latencies_ms)} posts)"
    )
    if got.page_ms:
        text += (
            f"; on a real page p50 {statistics.median(got.page_ms):.0f} ms,"
            f" max {got.page_ms[-1]:.0f} ms ({len(got.page_ms)} posts)"
        )
    return (
        text + f"; serve CPU {got.cpu_ms_per_post:.1f} ms a post, wall {got.wall_s:.1f} s;"
        f" load average {got.load}"
    )


async def _run(
    url: str, base: str, world: World, args: argparse.Namespace, serve: subprocess.Popen[str]
) -> None:
    posts, gap, rounds, browsers = args.posts, args.gap, args.rounds, args.browsers
    rng = random.Random(12)
    pages = ShownPages()
    try:
        await pages.open(
            base,
            [(world.tokens[n], world.conversations[n]) for n in range(browsers)],
        )
        figures: dict[str, list[Phase]] = {"chat": [], "events": []}
        for r in range(rounds):
            for stream in ("chat", "events") if r % 2 == 0 else ("events", "chat"):
                got = await _phase(
                    url,
                    base,
                    world,
                    stream,
                    pages if stream == "chat" else None,
                    posts,
                    gap,
                    serve,
                    rng,
                )
                figures[stream].append(got)
                print(f"   {stream:6} round {r + 1}/{rounds}: {_describe(got)}")
                sys.stdout.flush()
    finally:
        await pages.close()
    customers = len(world.tokens)
    print(
        f"== agent post -> customer, {customers} customers connected to one serve,"
        f" {posts} posts a phase, one every {gap} s"
    )
    med = statistics.median
    for stream, label in (
        ("chat", "chat pages (/chat/live)"),
        ("events", "baseline /api/v1/events"),
    ):
        got = figures[stream]
        print(
            f"   {label}: p50 {med(med(p.latencies_ms) for p in got):.0f} ms,"
            f" p99 {med(_p99(p.latencies_ms) for p in got):.0f} ms,"
            f" serve CPU {med(p.cpu_ms_per_post for p in got):.1f} ms a post"
        )
    page = sorted(ms for p in figures["chat"] for ms in p.page_ms)
    if page:
        print(
            f"   on {browsers} real Chromium pages: p50 {med(page):.0f} ms,"
            f" p99 {_p99(page):.0f} ms ({len(page)} posts)"
        )
    chat = med(_p99(p.latencies_ms) for p in figures["chat"])
    events = med(_p99(p.latencies_ms) for p in figures["events"])
    print(f"   ratio chat p99 / events p99: {chat / events:.2f}; load average {load_average()}")

    loaded = await first_load(base, world.tokens[-1], world.conversations[-1], args.loads)
    print("== first load of a conversation in headless Chromium (cold profile, median)")
    print(
        f"   {loaded.wire_bytes / 1024:.1f} KB on the wire ({loaded.body_bytes / 1024:.1f} KB"
        f" decoded) in {loaded.requests} requests (aim < 100 KB)"
    )
    print(
        f"   interactive (live) {loaded.interactive_ms:.0f} ms, document parsed"
        f" {loaded.dom_interactive_ms:.0f} ms; a bare page {loaded.bare_ms:.0f} ms;"
        f" ratio {loaded.interactive_ms / max(loaded.bare_ms, 1.0):.1f} (aim < 500 ms);"
        f" load average {load_average()}"
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=500, help="customers connected")
    p.add_argument("--browsers", type=int, default=3, help="of them, real Chromium pages")
    p.add_argument("--posts", type=int, default=200, help="posts a phase")
    p.add_argument("--gap", type=float, default=0.05, help="seconds between posts")
    p.add_argument("--rounds", type=int, default=2, help="phases of each stream")
    p.add_argument("--loads", type=int, default=5, help="cold first loads")
    args = p.parse_args()
    if args.quick:
        args.pages, args.browsers, args.posts, args.rounds, args.loads = 20, 1, 20, 1, 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    url = f"sqlite:///{tmp / 'deskbell.sqlite'}"
    print(f"   seeding {args.pages} customers ...")
    sys.stdout.flush()
    world = asyncio.run(_seed(url, args.pages))
    procs, bases = _start_serves(url, tmp, 1)
    try:
        asyncio.run(_run(url, bases[0], world, args, procs[0]))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"   cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
