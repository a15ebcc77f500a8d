"""Shared pieces of the benchmarks: options, a catcher SMTP server in its own process, output.

Every benchmark prints its figure as a ratio against a baseline measured in the same run
(STYLE.md), so machines of different speed still compare.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "Catcher",
    "build_fallback_world",
    "catcher",
    "free_port",
    "load_average",
    "parser",
    "report",
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


def load_average() -> float:
    """The machine's 1-minute load average, printed beside each figure (a shared machine)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="a small smoke run (figures not meaningful)"
    )
    return p


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
