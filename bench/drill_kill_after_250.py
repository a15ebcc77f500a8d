"""E7's window, measured: `deskbell serve` is SIGKILLed at a random moment after an SMTP 250.

Each round queues K emails, starts `deskbell serve` as a process against an aiosmtpd catcher
in this process, and when the catcher has answered 250 to the j-th email of the round (j at
random), a thread sends SIGKILL to the process d ms later (d at random in [0, --max-ms]). Then
`serve` is started again and finishes the round; the catcher counts Message-IDs it accepted
twice. A duplicate means the kill fell between a 250 and the commit that records it, so the
largest d that still duplicated bounds the window from above, and the share of rounds with a
duplicate times --max-ms estimates its mean width. Baseline: none (a crash window has no
"raw" equivalent); `--root` runs the same drill against another checkout, for comparison.

    .venv/bin/python bench/drill_kill_after_250.py [--rounds 60] [--max-ms 40] [--root DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
K = 6  # emails per round


@dataclass
class _Catcher:
    """aiosmtpd handler: counts accepted Message-IDs; fires the kill after the chosen 250."""

    accepted: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)
    kill_after: int = -1  # index in this round's acceptances
    delay_s: float = 0.0
    pid: int = 0
    round_seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email.parser import BytesHeaderParser

        mid = str(BytesHeaderParser().parsebytes(envelope.original_content)["Message-ID"])
        with self.lock:
            self.accepted[mid] += 1
            self.order.append(mid)
            n = self.round_seen
            self.round_seen += 1
            if n == self.kill_after:
                threading.Thread(target=self._kill, args=(self.pid, self.delay_s)).start()
        return "250 2.0.0 OK"

    @staticmethod
    def _kill(pid: int, delay_s: float) -> None:
        # After the 250 is written: aiosmtpd writes it right after this handler returns.
        time.sleep(delay_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _env(root: Path, data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DESKBELL_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = str(root)
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    return env


def _serve(root: Path, data: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            cwd=root,
            env=_env(root, data),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _prepare(data: Path, port: int) -> None:
    from services.api import Service

    svc = await Service.open(data_dir=data)
    try:
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(port)),
            ("smtp.security", "none"),
            ("unseen_delay_s", "1"),
        ):
            await svc.set_config(key, value)
        await svc.add_person(email="author@example.com", name="Author")
    finally:
        await svc.close()


async def _post_round(data: Path, n: int) -> None:
    """K emails: a new item with K new followers (so the loop guard never holds one back)."""
    from services.api import ConversationKind, Service

    svc = await Service.open(data_dir=data)
    try:
        followers = [f"r{n}-{i}@example.com" for i in range(K)]
        for address in followers:
            await svc.add_person(email=address, name=address.split("@")[0])
        item = await svc.create_item(title=f"Drill {n}", followers=followers)
        await svc.post(
            author="author@example.com",
            text=f"round {n}",
            item_number=item.number,
            kind=ConversationKind.INTERNAL,
        )
    finally:
        await svc.close()


def _statuses(data: Path) -> Counter[str]:
    with sqlite3.connect(data / "deskbell.db") as conn:
        rows = conn.execute("SELECT status FROM emails WHERE kind = 'notification'").fetchall()
    return Counter(r[0] for r in rows)


def _wait(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=60)
    args.add_argument("--max-ms", type=float, default=40.0)
    args.add_argument("--root", type=Path, default=ROOT, help="the checkout to drill")
    opts = args.parse_args()
    root = opts.root.resolve()
    # The drilled checkout's services, here and in its `serve` processes (not this one's).
    sys.path.insert(0, str(root))
    from aiosmtpd.controller import Controller

    rng = random.Random(8)
    handler = _Catcher()
    with socket.socket() as sock:  # aiosmtpd's Controller cannot take port 0
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    results: list[tuple[float, int]] = []
    dups_so_far = 0
    with tempfile.TemporaryDirectory(prefix="deskbell-drill-") as tmp:
        data, log = Path(tmp) / "data", Path(tmp) / "serve.log"
        asyncio.run(_prepare(data, port))
        # Round 0 (the set-up's own post) warms everything up, without a kill.
        for n in range(opts.rounds + 1):
            asyncio.run(_post_round(data, n))
            with handler.lock:
                handler.round_seen = 0
                handler.kill_after = rng.randrange(K - 1) if n else -1
                handler.delay_s = rng.uniform(0, opts.max_ms) / 1000 if n else 0.0
            proc = _serve(root, data, log)
            handler.pid = proc.pid
            delay_ms = handler.delay_s * 1000
            if n:
                try:
                    proc.wait(timeout=120)  # killed
                except subprocess.TimeoutExpired:
                    proc.kill()
                    print(f"round {n}: the kill never came", file=sys.stderr)
                proc = _serve(root, data, log)
            ok = _wait(lambda want=K * (n + 1): _statuses(data).get("sent", 0) == want, 120)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            if not ok:
                print(f"round {n}: not all sent: {_statuses(data)}", file=sys.stderr)
            twice = sum(c - 1 for c in handler.accepted.values())
            if n:
                results.append((delay_ms, twice - dups_so_far))
            dups_so_far = twice
    controller.stop()
    hit = sorted(d for d, dups in results if dups)
    clean = sorted(d for d, dups in results if not dups)
    rounds = len(results)
    print(f"== kill drill: SIGKILL 0-{opts.max_ms:g} ms after a 250, {rounds} rounds ({root})")
    print(f"   rounds with a duplicate: {len(hit)} of {rounds}")
    if hit:
        print(f"   kill delays that duplicated: {', '.join(f'{d:.1f}' for d in hit)} ms")
        print(f"   largest delay that duplicated: {hit[-1]:.1f} ms")
    if clean:
        print(f"   smallest delay that did not: {clean[0]:.1f} ms")
    print(f"   estimated mean window: {len(hit) / max(rounds, 1) * opts.max_ms:.1f} ms")
    print(f"   load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
