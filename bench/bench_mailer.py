"""The outbox (`OutboxWorker.flush`) vs a raw aiosmtplib loop on one connection (aim >= 0.8).

2,000 notification emails are queued by the real scheduler (rendered, with their Message-IDs),
then sent by the outbox to an aiosmtpd catcher in a child process. The baseline sends the same
bytes, envelope by envelope, with aiosmtplib on one connection to the same server.

    .venv/bin/python bench/bench_mailer.py [--quick]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiosmtplib
from _common import build_fallback_world, catcher, parser, report
from sqlalchemy import select

from services.api import Service
from services.clock import ManualClock
from services.store.models import Email


async def _run(folder: Path, n: int) -> tuple[float, float, int, int]:
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
            async with service.store.sessions() as session:
                rows = (
                    await session.execute(
                        select(Email.from_addr, Email.to_addrs, Email.raw).where(
                            Email.kind == "notification"
                        )
                    )
                ).all()
            assert len(rows) == n, f"{len(rows)} emails queued, expected {n}"

            started = time.perf_counter()
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port) as smtp:
                for sender, recipients, raw in rows:
                    await smtp.sendmail(sender, list(recipients), raw)
            raw_s = time.perf_counter() - started

            started = time.perf_counter()
            tried = await service.outbox.flush()
            outbox_s = time.perf_counter() - started
            sent = len(await service.emails(status="sent", limit=n + 100))
        finally:
            await service.close()
        arrived = len(server.arrivals())
    assert tried == n and sent >= n, (tried, sent)
    return outbox_s, raw_s, arrived, sent


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n = 100 if args.quick else 2_000
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-mailer-") as tmp:
        outbox_s, raw_s, arrived, _sent = asyncio.run(_run(Path(tmp), n))
    report(
        "mailer: outbox flush vs raw aiosmtplib, one connection each",
        ratio=raw_s / outbox_s,
        aim=">= 0.8",
        details={
            "emails": f"{n:,} (arrived at the catcher: {arrived:,}, both runs)",
            "outbox": f"{outbox_s:.2f} s = {n / outbox_s:,.0f} emails/s",
            "raw aiosmtplib": f"{raw_s:.2f} s = {n / raw_s:,.0f} emails/s",
        },
    )


if __name__ == "__main__":
    main()
