"""The outbox (`OutboxWorker.flush`) vs a raw aiosmtplib loop on one connection (aim >= 0.8).

2,000 notification emails are queued by the real scheduler (rendered, with their Message-IDs),
then sent by the outbox to an aiosmtpd catcher in a child process. The baseline sends the same
bytes, envelope by envelope, with aiosmtplib on one connection to the same server. Rounds
interleave the two halves (their order alternates); between rounds the emails are queued again.
The figure is the median of the rounds' wall-time ratios; CPU (all threads of this process)
is reported beside it, with the load average.

    .venv/bin/python bench/bench_mailer.py [--quick] [--rounds N] [--threads] [--profile]

`--threads` adds the outbox half's CPU an email by thread (the event loop, the database's
writer and reader threads; the catcher is another process); `--profile` cProfiles the
outbox half on the event loop.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiosmtplib
from _common import build_fallback_world, catcher, load_average, parser, report, thread_cpu
from sqlalchemy import select, update

from services.api import Service
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.store.database import Tx
from services.store.models import Email, EmailBody

_NOTIFICATIONS = Email.kind == "notification"


def _queued(tx: Tx) -> list[tuple[str, list[str], bytes]]:
    rows = tx.conn.execute(
        select(Email.from_addr, Email.to_addrs, EmailBody.raw)
        .join(EmailBody, EmailBody.email_id == Email.id)
        .where(_NOTIFICATIONS)
    )
    return [(sender, list(to), raw) for sender, to, raw in rows]


def _queue_again(tx: Tx) -> None:
    tx.conn.execute(
        update(Email)
        .where(_NOTIFICATIONS)
        .values(
            status=EmailStatus.QUEUED.value,
            attempts=0,
            claimed_by=None,
            claimed_until=None,
            next_attempt_at=None,
            sent_at=None,
        )
    )


async def _raw(port: int, rows: list[tuple[str, list[str], bytes]]) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        for sender, recipients, raw in rows:
            await smtp.sendmail(sender, recipients, raw)


async def _timed(work: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work
    return time.perf_counter() - wall, time.process_time() - cpu


class _Watched:
    """The outbox half's CPU by thread and its cProfile, when asked for."""

    def __init__(self, *, threads: bool, profile: bool) -> None:
        self.by_thread: dict[str, float] = {}
        self._threads = threads
        self.profile = cProfile.Profile() if profile else None

    async def timed(self, work: Any) -> tuple[float, float]:
        before = thread_cpu() if self._threads else {}
        if self.profile:
            self.profile.enable()
        try:
            return await _timed(work)
        finally:
            if self.profile:
                self.profile.disable()
            for name, cpu in (thread_cpu() if self._threads else {}).items():
                self.by_thread[name] = self.by_thread.get(name, 0.0) + cpu - before.get(name, 0.0)


async def _run(folder: Path, n: int, rounds: int, watched: _Watched) -> dict[str, Any]:
    with catcher(folder) as server:
        clock = ManualClock()
        service = await Service.open(data_dir=folder / "data", clock=clock)
        try:
            for key, value in (
                ("smtp.host", "127.0.0.1"),
                ("smtp.port", str(server.port)),
                ("smtp.security", "none"),
                ("unseen_delay_s", "60"),
            ):
                await service.set_config(key, value)
            await build_fallback_world(service, emails=n)
            clock.advance(61)
            await service.run_scheduler_once()
            rows = await service.db.read(_queued)
            assert len(rows) == n, f"{len(rows)} emails queued, expected {n}"
            load_before = load_average()
            raw: list[tuple[float, float]] = []
            outbox: list[tuple[float, float]] = []
            for index in range(rounds):
                await service.db.write(_queue_again)
                halves = [("raw", _raw(server.port, rows)), ("outbox", service.outbox.flush())]
                for name, work in halves if index % 2 == 0 else halves[::-1]:
                    if name == "raw":
                        raw.append(await _timed(work))
                    else:
                        outbox.append(await watched.timed(work))
                sent = len(await service.emails(status="sent", limit=n + 100))
                assert sent == n, f"round {index}: {sent} of {n} emails recorded as sent"
        finally:
            await service.close()
        arrived = len(server.arrivals())
    assert arrived == 2 * n * rounds, (arrived, n, rounds)
    return {"raw": raw, "outbox": outbox, "load": (load_before, load_average())}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=0, help="A/B rounds (default 5; --quick: 2)")
    p.add_argument("--threads", action="store_true", help="the outbox's CPU by thread")
    p.add_argument("--profile", action="store_true", help="cProfile the outbox half")
    args = p.parse_args()
    n = 100 if args.quick else 2_000
    rounds = args.rounds or (2 if args.quick else 5)
    watched = _Watched(threads=args.threads, profile=args.profile)
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-mailer-") as tmp:
        found = asyncio.run(_run(Path(tmp), n, rounds, watched))
    if watched.profile:
        pstats.Stats(watched.profile).sort_stats("cumulative").print_stats(45)
    for name, cpu in sorted(watched.by_thread.items(), key=lambda kv: -kv[1]):
        print(f"   thread {name}: {cpu / (n * rounds) * 1e6:.0f} µs CPU an email")
    raw, outbox = found["raw"], found["outbox"]
    ratios = [r[0] / o[0] for r, o in zip(raw, outbox, strict=True)]
    raw_wall = statistics.median(w for w, _ in raw)
    box_wall = statistics.median(w for w, _ in outbox)
    raw_cpu = statistics.median(c for _, c in raw)
    box_cpu = statistics.median(c for _, c in outbox)
    before, after = found["load"]
    report(
        "mailer: outbox flush vs raw aiosmtplib, one connection each (wall)",
        ratio=statistics.median(ratios),
        aim=">= 0.8",
        details={
            "emails": f"{n:,} per half, {rounds} interleaved rounds",
            "outbox": f"{box_wall:.2f} s = {n / box_wall:,.0f} emails/s; "
            f"CPU {box_cpu / n * 1e6:,.0f} µs/email",
            "raw aiosmtplib": f"{raw_wall:.2f} s = {n / raw_wall:,.0f} emails/s; "
            f"CPU {raw_cpu / n * 1e6:,.0f} µs/email",
            "wall ratio per round": ", ".join(f"{r:.2f}" for r in ratios),
            "CPU ratio (raw/outbox)": f"{raw_cpu / box_cpu:.2f}",
            "load average (1, 5, 15 min) before / after": f"{before} / {after}",
        },
    )


if __name__ == "__main__":
    main()
