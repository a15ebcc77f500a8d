"""A scheduler pass over a database with 1,000,000 history rows vs 10,000 (issue 9: flat, ≤ 1.5×).

Two SQLite databases built alike, one with `--history` old messages and deliveries (already
emailed, due long ago), one with `--small`; `ANALYZE` run on both, as SQLite's own optimize
would. Each runs a Service on a manual clock (not started: the benchmark drives the passes).
In interleaved rounds (small, big, big, small, ...) each database gets:

- an empty pass: `run_scheduler_once()` with nothing due (the due query and the next due time);
- a pass with `--due` deliveries falling due, each its own recipient and conversation, so each
  becomes one email (posted before the round, the clock then moved past their due time).

Printed: the median CPU time (the whole process: every thread) and wall time of each pass, the
big/small ratio, and the load average beside each round. Only history deliveries and messages
are added; emails sent long ago are not (the caps read the last day of them through an index).

    .venv/bin/python bench/bench_scheduler_history.py [--quick] [--history 1000000]
        [--small 10000] [--rounds 6] [--due 20]
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fill_messages, load_average, parser

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.domain.model import DeliveryState
from services.store.db import DB_FILENAME

AUTHOR = "author@example.com"
DELAY_S = 60


@dataclass
class World:
    name: str
    service: Service
    clock: ManualClock
    items: list[int]  # numbers of the items still unused, one per due delivery to come


def _recipient(n: int) -> str:
    return f"r{n}@example.com"


async def _build(folder: Path, history: int, items: int) -> None:
    """The people and items of every round, and `history` old messages on a template post."""
    service = await Service.open(data_dir=folder, clock=ManualClock())
    try:
        await service.set_config("unseen_delay_s", str(DELAY_S))
        await service.add_person(email=AUTHOR, name="Author")
        await service.add_person(email=_recipient(-1), name="History")
        old = await service.create_item(title="History", followers=[_recipient(-1)])
        template = await service.post(
            author=AUTHOR, text="old", item_number=old.number, kind=ConversationKind.INTERNAL
        )
        for n in range(items):
            await service.add_person(email=_recipient(n), name=f"R{n}")
            await service.create_item(title=f"Item {n}", followers=[_recipient(n)])
    finally:
        await service.close()
    conn = sqlite3.connect(folder / DB_FILENAME, isolation_level=None)
    fill_messages(conn, template.message_id, history, delivery={"state": DeliveryState.EMAILED})
    conn.execute("ANALYZE")
    conn.close()


async def _open(name: str, folder: Path, items: int) -> World:
    clock = ManualClock()
    service = await Service.open(data_dir=folder, clock=clock)
    # Item 1 holds the history; the others are the rounds' own.
    return World(name, service, clock, list(range(2, items + 2)))


async def _measure(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    await work()
    return time.process_time() - c0, time.perf_counter() - w0


async def _round(world: World, due: int) -> dict[str, tuple[float, float]]:
    world.clock.advance(DELAY_S * 10)  # whatever an earlier round left is long done
    empty = await _measure(world.service.run_scheduler_once)
    for _ in range(due):
        number = world.items.pop(0)
        await world.service.post(
            author=AUTHOR, text="due", item_number=number, kind=ConversationKind.INTERNAL
        )
    world.clock.advance(DELAY_S + 1)
    busy = await _measure(world.service.run_scheduler_once)
    return {"empty pass": empty, f"pass with {due} due": busy}


async def _run(folder: Path, history: int, small: int, rounds: int, due: int) -> None:
    items = rounds * due + due
    for name, size in (("small", small), ("big", history)):
        (folder / name).mkdir()
        t0 = time.perf_counter()
        await _build(folder / name, size, items)
        print(f"   {name}: {size:,} history rows built in {time.perf_counter() - t0:.1f} s")
    worlds = {name: await _open(name, folder / name, items) for name in ("small", "big")}
    figures: dict[str, dict[str, list[tuple[float, float]]]] = {"small": {}, "big": {}}
    try:
        for world in worlds.values():  # warm-up: compiled statements, caches, page cache
            await _round(world, 1)
        for r in range(rounds):
            for name in ("small", "big") if r % 2 == 0 else ("big", "small"):
                for kind, value in (await _round(worlds[name], due)).items():
                    figures[name].setdefault(kind, []).append(value)
            print(
                f"   round {r + 1}/{rounds}: "
                + "; ".join(
                    f"{name} {kind} {figures[name][kind][-1][0] * 1e3:.1f} ms CPU"
                    for name in ("small", "big")
                    for kind in figures[name]
                )
                + f"; load average {load_average()}"
            )
    finally:
        for world in worlds.values():
            await world.service.close()
    med = statistics.median
    print(f"== scheduler pass, {history:,} history rows vs {small:,}, medians of {rounds} rounds")
    for kind in figures["small"]:
        s_cpu, b_cpu = (med(c for c, _ in figures[n][kind]) for n in ("small", "big"))
        s_wall, b_wall = (med(w for _, w in figures[n][kind]) for n in ("small", "big"))
        print(
            f"   {kind}: small {s_cpu * 1e3:.1f} ms CPU / {s_wall * 1e3:.1f} ms wall, "
            f"big {b_cpu * 1e3:.1f} ms CPU / {b_wall * 1e3:.1f} ms wall: "
            f"ratio big/small CPU {b_cpu / s_cpu:.2f}, wall {b_wall / s_wall:.2f} (aim ≤ 1.5)"
        )
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")
    sys.stdout.flush()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--history", type=int, default=1_000_000)
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--due", type=int, default=20)
    args = p.parse_args()
    history, small, rounds = (
        (50_000, 1_000, 2) if args.quick else (args.history, args.small, args.rounds)
    )
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-scheduler-") as tmp:
        asyncio.run(_run(Path(tmp), history, small, rounds, args.due))


if __name__ == "__main__":
    main()
