"""E7, T2 with many processes on one database, on both engines (issue 9): several
`deskbell serve` and several posting processes, serves killed (SIGKILL) and stopped (SIGTERM)
at random moments and replaced; every email reaches the SMTP server exactly once.

The one duplicate E7 allows is an email accepted by the server in the instant before its
record commits, when its sender is SIGKILLed: at most the last acceptance on each killed
connection. Sizes stay modest (about 200 emails) so the suite stays quick.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from services.api import Service
from services.store.database import Tx
from services.store.models import Email
from tests.e2e.conftest import ROOT, Deskbell, _env, wait_until
from tests.support.service_url import service_url
from tests.support.smtpd import CatcherHandler, SmtpServer

AUTHOR = "lead@example.com"
FOLLOWERS = [f"agent{i}@example.com" for i in range(8)]
ITEMS = 24  # 24 items x 8 followers: 192 emails
SERVES = 3
POSTERS = 4
KILLS = 4

# A posting process: one message on each of its items, through the service as the app posts.
_POSTER = r"""
import asyncio, sys
from services.api import ConversationKind, Service

async def main(url, numbers):
    service = await Service.open(url=url)
    try:
        for number in numbers:
            await service.post(author=sys.argv[2], text=f"news on {number}",
                               item_number=number, kind=ConversationKind.INTERNAL)
    finally:
        await service.close()

asyncio.run(main(sys.argv[1], [int(n) for n in sys.argv[3:]]))
"""


@dataclass
class _Accepted(CatcherHandler):
    """Notes, per client connection (its port), the Message-IDs the server accepted."""

    by_port: dict[int, list[str]] = field(default_factory=dict)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            mid = str(self.messages[-1]["Message-ID"]).strip().strip("<>")
            self.by_port.setdefault(session.peer[1], []).append(mid)
        return reply


def _post(team: Deskbell, numbers: list[int]) -> subprocess.Popen[str]:
    """A posting process writing on `numbers` through the service, on the team's database."""
    url = team.url or f"sqlite+aiosqlite:///{team.data_dir / 'deskbell.db'}"
    return subprocess.Popen(
        [sys.executable, "-c", _POSTER, url, AUTHOR, *map(str, numbers)],
        cwd=ROOT,
        env=_env(team.data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _logs(team: Deskbell) -> str:
    return "\n".join(team.serve_log(i)[-3000:] for i in range(len(team.served)))


async def _set_up(url: str, smtp_port: int) -> list[int]:
    service = await Service.open(url=url)
    try:
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(smtp_port)),
            ("smtp.security", "none"),
            ("unseen_delay_s", "1"),
            ("outbox.lease_s", "3"),
        ):
            await service.set_config(key, value)
        await service.add_person(email=AUTHOR, name="Lead")
        for address in FOLLOWERS:
            await service.add_person(email=address, name=address.split("@")[0])
        return [
            (await service.create_item(title=f"Item {n}", followers=FOLLOWERS)).number
            for n in range(ITEMS)
        ]
    finally:
        await service.close()


def _notifications(tx: Tx) -> list[tuple[str, str]]:
    rows = tx.conn.execute(
        select(Email.message_id, Email.status).where(Email.kind == "notification")
    )
    return [(str(mid).strip("<>"), status) for mid, status in rows]


async def _emails(url: str) -> list[tuple[str, str]]:
    service = await Service.open(url=url)
    try:
        return await service.db.read(_notifications)
    finally:
        await service.close()


def _client_ports(proc: subprocess.Popen[str], smtp_port: int) -> set[int]:
    try:
        connections = psutil.Process(proc.pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return set()
    return {c.laddr.port for c in connections if c.raddr and c.raddr.port == smtp_port}


def test_e7_t2_serves_and_posters_send_every_email_once_through_kills(
    database_url: str, tmp_path: Path
) -> None:
    # A little slow per DATA, so sending outlasts the kills and they land mid-flow.
    handler = _Accepted(accept_only_if_connected=True, delay_data_s=0.02)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    on_postgres = database_url.startswith("postgresql")
    url = service_url(database_url) if on_postgres else None
    team = Deskbell(data_dir=data_dir, log_dir=logs, url=url)
    open_url = url or f"sqlite+aiosqlite:///{data_dir / 'deskbell.db'}"
    rng = random.Random(os.getpid())
    killed_ports: set[int] = set()
    try:
        with SmtpServer(handler=handler) as server:
            numbers = asyncio.run(_set_up(open_url, server.port))
            for _ in range(SERVES):
                team.serve()
            posters = [_post(team, numbers[k::POSTERS]) for k in range(POSTERS)]
            expected = ITEMS * len(FOLLOWERS)

            kills: list[str] = []

            # Random moments while mail flows: after so many acceptances.
            moments = sorted(rng.sample(range(5, expected * 3 // 4), KILLS))

            def chaos() -> None:
                """Kill or stop a live serve at random moments while mail flows; replace it."""
                for moment in moments:
                    wait_until(lambda: len(handler.messages) >= moment, timeout_s=120)  # noqa: B023
                    live = [p for p in team.served if p.poll() is None]
                    victim = rng.choice(live)
                    if len(kills) % 2 == 0:
                        killed_ports.update(_client_ports(victim, server.port))
                        victim.send_signal(signal.SIGKILL)
                        kills.append("SIGKILL")
                    else:
                        victim.send_signal(signal.SIGTERM)
                        kills.append("SIGTERM")
                    victim.wait(timeout=60)
                    team.serve()

            chaos_thread = threading.Thread(target=chaos, daemon=True)
            chaos_thread.start()
            for poster in posters:
                out, _ = poster.communicate(timeout=120)
                assert poster.returncode == 0, out

            def all_sent() -> bool:
                emails = asyncio.run(_emails(open_url))
                return len(emails) == expected and all(s == "sent" for _, s in emails)

            chaos_thread.join(timeout=120)
            assert kills == ["SIGKILL", "SIGTERM"] * (KILLS // 2)
            assert wait_until(all_sent, timeout_s=180, step_s=0.5), _logs(team)
            time.sleep(1.0)  # anything sent twice by a late sender would show now
            for proc in team.served:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(timeout=30) == 0, _logs(team)
    finally:
        team.stop_all()

    queued = {mid for mid, _ in asyncio.run(_emails(open_url))}
    assert len(queued) == expected
    received = Counter(str(m["Message-ID"]).strip().strip("<>") for m in handler.messages)
    assert set(received) == queued  # nothing lost
    # E7's only window: the last acceptance on a connection of a SIGKILLed serve.
    may_repeat = {handler.by_port[p][-1] for p in killed_ports if handler.by_port.get(p)}
    twice = {mid: n for mid, n in received.items() if n > 1}
    assert set(twice) <= may_repeat and all(n == 2 for n in twice.values()), (twice, kills)
