"""Shared pieces of the benchmarks: options, a catcher SMTP server in its own process, output.

Every benchmark prints its figure as a ratio against a baseline measured in the same run
(STYLE.md), so machines of different speed still compare.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "ROOT",
    "Catcher",
    "build_fallback_world",
    "catcher",
    "fill_messages",
    "free_port",
    "load_average",
    "parser",
    "report",
    "shown",
    "thread_cpu",
]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A minimal aiosmtpd catcher run with `python -c`: for every accepted message it appends
# "<time.time()> <Message-ID>" to a file, so the benchmark reads arrival times without the
# server's CPU counting against the process under test.
_CATCHER = r"""
import asyncio, sys, time
from aiosmtpd.controller import Controller
from email.parser import BytesHeaderParser

port, out = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
parse = BytesHeaderParser().parsebytes

class Handler:
    async def handle_DATA(self, server, session, envelope):
        at = time.time()
        mid = str(parse(envelope.original_content or envelope.content)["Message-ID"]).strip()
        out.write(f"{at:.6f} {mid}\n")
        return "250 2.0.0 OK"

c = Controller(Handler(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Catcher:
    port: int
    log: Path

    def arrivals(self) -> list[tuple[float, str]]:
        rows = []
        for line in self.log.read_text().splitlines():
            at, _, mid = line.partition(" ")
            rows.append((float(at), mid.strip("<>")))
        return rows


@contextmanager
def catcher(folder: Path) -> Iterator[Catcher]:
    """An aiosmtpd server on loopback in a child process; its arrivals go to a file."""
    port = free_port()
    log = folder / f"catcher-{port}.log"
    log.touch()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CATCHER, str(port), str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield Catcher(port=port, log=log)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def shown(
    cmd: list[str], *, state: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start `cmd` with `DESKBELL_TEST_STATE_FILE=state` and wait until that file appears (the
    app writes it once its window shows with data); yield the process and its start time
    (`time.time()`); stop it with SIGTERM afterwards."""
    state.unlink(missing_ok=True)
    env = {**env, "DESKBELL_TEST_STATE_FILE": str(state)}
    started = time.time()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while not state.exists():
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise RuntimeError(f"{cmd} exited {proc.returncode}: {proc.stderr.read()!r}")
            time.sleep(0.002)
        yield proc, started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="a small smoke run (figures not meaningful)"
    )
    return p


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, printed beside every figure: on a shared machine
    a figure means little without them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def report(name: str, *, ratio: float, aim: str, details: dict[str, str]) -> None:
    print(f"== {name}")
    for key, value in details.items():
        print(f"   {key}: {value}")
    print(f"   ratio: {ratio:.2f} (aim {aim})")
    sys.stdout.flush()


os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")


async def build_fallback_world(service: Any, *, emails: int, per_item: int = 10) -> list[int]:
    """`emails` pending deliveries: items of `per_item` followers (within the I6 cap of 10 per
    conversation), one message each by an author who is not a follower's recipient. Each
    recipient gets exactly one delivery, so E2 merges nothing. Returns the items' numbers."""
    from services.api import ConversationKind

    await service.add_person(email="author@example.com", name="Author")
    numbers = []
    for start in range(0, emails, per_item):
        followers = [f"r{i}@example.com" for i in range(start, min(emails, start + per_item))]
        for address in followers:
            await service.add_person(email=address, name=address.split("@")[0])
        item = await service.create_item(title=f"Item {start // per_item}", followers=followers)
        await service.post(
            author="author@example.com",
            text=f"Message for item {item.number}",
            item_number=item.number,
            kind=ConversationKind.INTERNAL,
        )
        numbers.append(item.number)
    return numbers


def fill_messages(
    conn: sqlite3.Connection,
    template_message: int,
    n: int,
    *,
    delivery: dict[str, object] | None = None,
) -> None:
    """`n` more messages like the template one, each with the template's deliveries (their
    columns overridden by `delivery`): batched, as fast as sqlite3 allows. History for a
    benchmark to land on, not what it measures."""

    def columns(table: str) -> list[str]:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]

    m_cols, d_cols = columns("messages"), columns("deliveries")
    m_row = list(
        conn.execute(
            f"SELECT {', '.join(m_cols)} FROM messages WHERE id = ?", (template_message,)
        ).fetchone()
    )
    d_rows = [
        list(r)
        for r in conn.execute(
            f"SELECT {', '.join(d_cols)} FROM deliveries WHERE message_id = ?", (template_message,)
        )
    ]
    text_at, msg_at = m_cols.index("text"), d_cols.index("message_id")
    for column, value in (delivery or {}).items():
        for d in d_rows:
            d[d_cols.index(column)] = value
    insert_m = f"INSERT INTO messages ({', '.join(m_cols)}) VALUES ({', '.join('?' * len(m_cols))})"
    insert_d = (
        f"INSERT INTO deliveries ({', '.join(d_cols)}) VALUES ({', '.join('?' * len(d_cols))})"
    )
    conn.execute("BEGIN")
    for start in range(0, n, 10_000):
        first = conn.execute("SELECT max(id) FROM messages").fetchone()[0] + 1
        count = min(10_000, n - start)
        messages = []
        for i in range(count):
            m_row[text_at] = f"old {start + i}"
            messages.append(tuple(m_row))
        conn.executemany(insert_m, messages)
        deliveries = []
        for i in range(count):
            for d in d_rows:
                d[msg_at] = first + i
                deliveries.append(tuple(d))
        conn.executemany(insert_d, deliveries)
    conn.execute("COMMIT")


async def interleaved_rounds(
    service_round: Callable[[int], Awaitable[tuple[float, float]]],
    raw_round: Callable[[int], tuple[float, float]],
    *,
    rounds: int,
    per_round: int,
    unit: str,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """A service half against a raw baseline in alternating order, after a warm-up of each:
    per round, the CPU and wall time of one `unit` in µs, each round printed with the load
    average. Each round function does `n` units and returns (CPU s, wall s)."""
    await service_round(50)  # warm-up: caches, compiled statements, the automation cache
    raw_round(50)
    cpu: dict[str, list[float]] = {"service": [], "raw": []}
    wall: dict[str, list[float]] = {"service": [], "raw": []}
    for r in range(rounds):
        for name in ("service", "raw") if r % 2 == 0 else ("raw", "service"):
            c, w = await service_round(per_round) if name == "service" else raw_round(per_round)
            cpu[name].append(c / per_round * 1e6)
            wall[name].append(w / per_round * 1e6)
        print(
            f"   round {r + 1}/{rounds}: service {cpu['service'][-1]:.0f} µs CPU, "
            f"raw {cpu['raw'][-1]:.0f} µs CPU a {unit}; load average {load_average()}"
        )
    return cpu, wall


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each of this process's live threads, by thread name (psutil)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    return {
        names.get(t.id, f"tid {t.id}"): t.user_time + t.system_time
        for t in psutil.Process().threads()
    }
