"""Posting through the started Service vs raw sqlite3 doing the same look-ups and rows (issue 9).

The database already holds 100,000 messages (200,000 deliveries), written with raw inserts
after the Service created the schema. Then messages are posted one by one, one transaction
each, in interleaved rounds (service, raw, service, raw, ...) so both halves meet the same
machine load:

- service: `Service.post` on a Service *started* as in the app (change feed, scheduler,
  outbox running; its own writes wake its feed), CPU of the whole process (every thread);
- raw: plain sqlite3 on a copy of the same database, in the calling thread (its CPU is that
  thread's), doing what a post must: BEGIN IMMEDIATE, the author by email, item N's
  conversation, its followers with their delays, the enabled automations for "message posted"
  (read once, then from a cache, as the service's AutomationCache does), the message, one
  delivery per recipient with its due time, the conversation's last message, a change row,
  COMMIT.

Printed: the median CPU time and wall time per post of each half, their ratio (raw / service:
1.0 means the service costs what the work needs), and the load average beside each round.

    .venv/bin/python bench/bench_post.py [--quick] [--rounds 10] [--per-round 500] [--profile]
        [--threads]

`--threads` adds the service half's CPU a post by thread (the event loop, the database's
writer and reader threads), summed over every round.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fill_messages, interleaved_rounds, load_average, parser, thread_cpu

from services.api import ConversationKind, PersonKind, Service
from services.store.db import DB_FILENAME

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@customer.org"
DEFAULT_DELAY_S = 60


def _stamp(moment: datetime) -> str:
    """A time as the service stores it: naive UTC text."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


class RawPoster:
    """A post the way the service must do it, with plain sqlite3 statements."""

    AUTHOR = "SELECT id, kind FROM persons WHERE email = ?"
    CONVERSATION = (
        "SELECT conversations.id, conversations.item_id FROM conversations "
        "JOIN items ON items.id = conversations.item_id "
        "WHERE items.number = ? AND conversations.kind = ?"
    )
    FOLLOWERS = (
        "SELECT persons.id, persons.kind, persons.notify_email, persons.delay_s FROM persons "
        "JOIN followers ON followers.person_id = persons.id "
        "WHERE followers.item_id = ? ORDER BY persons.id"
    )
    AUTOMATIONS = (
        "SELECT id, conditions, actions FROM automations "
        "WHERE trigger = ? AND enabled = 1 AND critical = 0 ORDER BY position, id"
    )
    MESSAGE = (
        "INSERT INTO messages (conversation_id, author_id, text, created_at, source) "
        "VALUES (?, ?, ?, ?, 'person') RETURNING id"
    )
    DELIVERY = (
        "INSERT INTO deliveries (message_id, recipient_id, conversation_id, created_at, due_at, "
        "state) VALUES (?, ?, ?, ?, ?, 'pending')"
    )
    TOUCH = "UPDATE conversations SET last_message_at = ?, last_message_id = ? WHERE id = ?"
    CHANGE = "INSERT INTO changes (at, kind, conversation_id) VALUES (?, 'message', ?)"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.automations: dict[str, list[Any]] = {}

    def post(self, *, author: str, item_number: int, kind: str, text: str) -> int:
        now = datetime.now(UTC)
        at = _stamp(now)
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            author_id, _author_kind = cur.execute(self.AUTHOR, (author.strip().lower(),)).fetchone()
            conv_id, _item_id = cur.execute(self.CONVERSATION, (item_number, kind)).fetchone()
            people = cur.execute(self.FOLLOWERS, (_item_id,)).fetchall()
            if "message_posted" not in self.automations:
                self.automations["message_posted"] = cur.execute(
                    self.AUTOMATIONS, ("message_posted",)
                ).fetchall()
            (message_id,) = cur.execute(self.MESSAGE, (conv_id, author_id, text, at)).fetchone()
            rows = []
            for person_id, person_kind, _email_on, delay_s in people:
                if person_id == author_id or (kind == "internal" and person_kind != "user"):
                    continue
                delay = DEFAULT_DELAY_S if delay_s is None else delay_s
                due = _stamp(now + timedelta(seconds=delay)) if delay else None
                rows.append((message_id, person_id, conv_id, at, due))
            cur.executemany(self.DELIVERY, rows)
            cur.execute(self.TOUCH, (at, message_id, conv_id))
            cur.execute(self.CHANGE, (at, conv_id))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return int(message_id)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


async def _prepare(folder: Path, existing: int) -> int:
    service = await Service.open(data_dir=folder)
    try:
        for email, name, kind in (
            (ANN, "Ann", PersonKind.USER),
            (BOB, "Bob", PersonKind.USER),
            (CARL, "Carl", PersonKind.CUSTOMER),
        ):
            await service.add_person(email=email, name=name, kind=kind)
        item = await service.create_item(title="Busy item", followers=[ANN, BOB, CARL])
        posted = await service.post(
            author=ANN, text="template", item_number=item.number, kind=ConversationKind.EXTERNAL
        )
    finally:
        await service.close()
    conn = _connect(folder / DB_FILENAME)
    fill_messages(conn, posted.message_id, existing)
    conn.close()
    return item.number


def _same_rows(folder: Path) -> None:
    """Both halves wrote the same rows (the baseline is not cheaper by doing less)."""
    counts = []
    for half in ("svc", "raw"):
        conn = sqlite3.connect(folder / half / DB_FILENAME)
        counts.append(
            {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("messages", "deliveries", "changes", "conversations")
            }
        )
        conn.close()
    if counts[0] != counts[1]:
        raise SystemExit(f"the halves wrote different rows: service {counts[0]}, raw {counts[1]}")


async def _run(args: Any, folder: Path, number: int) -> None:
    rounds, per_round = (2, 100) if args.quick else (args.rounds, args.per_round)
    service = await Service.open(data_dir=folder / "svc")
    await service.start()  # as in the app: change feed, scheduler, outbox
    raw = RawPoster(_connect(folder / "raw" / DB_FILENAME))
    prof = cProfile.Profile() if args.profile else None
    external = ConversationKind.EXTERNAL
    counter = iter(range(10**9))
    by_thread: dict[str, float] = {}
    posts = 0

    async def service_round(n: int) -> tuple[float, float]:
        nonlocal posts
        threads0 = thread_cpu() if args.threads else {}
        c0, w0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for _ in range(n):
            await service.post(
                author=ANN, text=f"new {next(counter)}", item_number=number, kind=external
            )
        if prof:
            prof.disable()
        spent = time.process_time() - c0, time.perf_counter() - w0
        for name, spent_s in (thread_cpu() if args.threads else {}).items():
            by_thread[name] = by_thread.get(name, 0.0) + spent_s - threads0.get(name, 0.0)
        posts += n
        return spent

    def raw_round(n: int) -> tuple[float, float]:
        c0, w0 = time.thread_time(), time.perf_counter()
        for _ in range(n):
            raw.post(author=ANN, item_number=number, kind="external", text=f"new {next(counter)}")
        return time.thread_time() - c0, time.perf_counter() - w0

    try:
        cpu, wall = await interleaved_rounds(
            service_round, raw_round, rounds=rounds, per_round=per_round, unit="post"
        )
    finally:
        await service.close()
        raw.conn.close()
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    for name, spent_s in sorted(by_thread.items(), key=lambda kv: -kv[1]):
        print(f"   thread {name}: {spent_s / posts * 1e6:.0f} µs CPU a post")
    _same_rows(folder)
    s_cpu, r_cpu = statistics.median(cpu["service"]), statistics.median(cpu["raw"])
    s_wall, r_wall = statistics.median(wall["service"]), statistics.median(wall["raw"])
    print(f"== post: started Service.post vs raw sqlite3, {rounds} rounds of {per_round}")
    for name, c, w in (("service", s_cpu, s_wall), ("raw sqlite3", r_cpu, r_wall)):
        print(f"   {name}: {c:.0f} µs CPU, {w:.0f} µs wall a post ({1e6 / w:,.0f}/s)")
    print(f"   ratio CPU: {r_cpu / s_cpu:.3f} (aim >= 0.2); ratio wall: {r_wall / s_wall:.3f}")
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")
    sys.stdout.flush()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--per-round", type=int, default=500)
    p.add_argument("--profile", action="store_true", help="cProfile the service's posts")
    p.add_argument("--threads", action="store_true", help="the service's CPU a post by thread")
    args = p.parse_args()
    existing = 2_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-post-") as tmp:
        folder = Path(tmp)
        base = folder / "base"
        base.mkdir()
        t0 = time.perf_counter()
        number = asyncio.run(_prepare(base, existing))
        print(f"   {existing:,} existing messages built in {time.perf_counter() - t0:.1f} s")
        shutil.copytree(base, folder / "svc")
        shutil.copytree(base, folder / "raw")
        asyncio.run(_run(args, folder, number))


if __name__ == "__main__":
    main()
