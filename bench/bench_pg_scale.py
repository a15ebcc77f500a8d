"""PostgreSQL: posts per second with 8 processes writing at once vs 1, and no lost or doubled row.

A private PostgreSQL cluster (tests/support/postgres.py). In interleaved rounds (1, 8, 8, 1,
...) a fresh database gets the same `--posts` posts, one transaction each through
`Service.post` (tests/support/api_writer.py: each writer opens its service, says "ready", and
all start on one signal): written by 1 process, or split over 8 processes, each posting into
its own item (8 agents, 8 conversations). Each post makes one message and one delivery.

Then each round is checked: every post a writer reported is in the database exactly once
(message ids unique across writers), no writer saw an error, and the database holds exactly
the messages and deliveries posted. A failed check fails the benchmark.

Printed per round: posts/s (all posts / the slowest writer's wall time), CPU per post (the
writers' CPU summed), and the load average; then the 8/1 ratio of the medians.

    .venv/bin/python bench/bench_pg_scale.py [--quick] [--posts 800] [--rounds 4]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, load_average, parser

from services.api import Service
from tests.support.databases import migrate
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster

READER = "reader@example.com"


def _author(n: int) -> str:
    return f"writer{n}@example.com"


@dataclass(frozen=True)
class Round:
    writers: int
    posts_per_s: float
    cpu_per_post_ms: float


async def _seed(url: str, writers: int) -> list[int]:
    """One author and one item per writer, each item followed by its author and a reader."""
    service = await Service.open(url=url)
    try:
        await service.add_person(email=READER, name="Reader")
        numbers = []
        for n in range(writers):
            await service.add_person(email=_author(n), name=f"Writer {n}")
            item = await service.create_item(title=f"Item {n}", followers=[_author(n), READER])
            numbers.append(item.number)
        return numbers
    finally:
        await service.close()


def _counts(url: str) -> dict[str, int]:
    """Counted with psycopg directly: what is in the database, whatever the service says."""
    import psycopg

    with psycopg.connect(url) as conn:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in ("messages", "deliveries")
        }


def _writers(url: str, numbers: list[int], posts: int) -> list[dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    share = [
        posts // len(numbers) + (1 if n < posts % len(numbers) else 0) for n in range(len(numbers))
    ]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.api_writer",
                "--database-url",
                url,
                "posts",
                str(share[n]),
                "--item",
                str(number),
                "--as",
                _author(n),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, number in enumerate(numbers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"a writer did not start: {proc.communicate(timeout=60)[1]}")
        for proc in procs:  # all at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            if proc.returncode != 0 or not out.strip():
                raise SystemExit(f"a writer failed ({proc.returncode}): {err[-2000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _round(cluster: PostgresCluster, writers: int, posts: int) -> Round:
    name = cluster.create_database()
    try:
        url = cluster.url(name)
        numbers = asyncio.run(_seed(url, writers))
        results = _writers(url, numbers, posts)
        ids = [i for r in results for i in r["message_ids"]]
        errors = [e for r in results for e in r["errors"]]
        counts = _counts(url)
        problems = []
        if errors:
            problems.append(f"{len(errors)} writes failed, e.g. {errors[0]}")
        if len(ids) != posts or len(set(ids)) != posts:
            problems.append(f"{len(ids)} posts reported, {len(set(ids))} distinct, of {posts}")
        if counts != {"messages": posts, "deliveries": posts}:
            problems.append(f"the database holds {counts}, {posts} of each expected")
        if problems:
            raise SystemExit(f"{writers} writers: " + "; ".join(problems))
        wall = max(r["wall_s"] for r in results)
        cpu = sum(r["cpu_s"] for r in results)
        return Round(writers, posts / wall, cpu / posts * 1e3)
    finally:
        cluster.drop_database(name)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=800, help="posts per round")
    p.add_argument("--rounds", type=int, default=4, help="rounds of each")
    args = p.parse_args()
    posts, rounds = (80, 1) if args.quick else (args.posts, args.rounds)
    try:
        cluster = start_cluster(migrate)
    except PostgresUnavailable as exc:
        raise SystemExit(f"no PostgreSQL here: {exc}") from exc
    figures: dict[int, list[Round]] = {1: [], 8: []}
    try:
        for r in range(rounds):
            for writers in (1, 8) if r % 2 == 0 else (8, 1):
                got = _round(cluster, writers, posts)
                figures[writers].append(got)
                print(
                    f"   round {r + 1}/{rounds}, {writers} writer(s):"
                    f" {got.posts_per_s:,.0f} posts/s,"
                    f" {got.cpu_per_post_ms:.1f} ms CPU a post, every row once;"
                    f" load average {load_average()}"
                )
                sys.stdout.flush()
    finally:
        cluster.stop()
    med = statistics.median
    one, eight = (med(r.posts_per_s for r in figures[n]) for n in (1, 8))
    one_cpu, eight_cpu = (med(r.cpu_per_post_ms for r in figures[n]) for n in (1, 8))
    print(
        f"== PostgreSQL posts/s, 8 writing processes vs 1, {posts} posts a round, {rounds} rounds"
    )
    print(f"   1 writer: {one:,.0f} posts/s, {one_cpu:.1f} ms CPU a post")
    print(f"   8 writers: {eight:,.0f} posts/s, {eight_cpu:.1f} ms CPU a post")
    print(f"   ratio 8/1: {eight / one:.2f} (report; no lost or doubled row: checked each round)")
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
