"""A desktop in a team (issue 11): catch-up after a day offline, and an idle connected desktop.

One `deskbell serve` process on a SQLite workspace (Ann and Bob, users; Carl, a customer;
item #1 they all follow). Ann's replica (`open_replica` + `TeamSync`, in this process) is
loaded once, then closed; each round Bob posts `--events` messages to the item through the
service (each one an event Ann's replica must apply, with her delivery), and:

- **catch-up**: Ann's replica opens again and follows the stream from its cursor; measured:
  seconds from `TeamSync.start()` until `wait_current()` returns (everything the server had
  is applied), and this process's CPU over that time;
- **baseline**: an empty replica loads the same workspace from the snapshot, then the
  stream: the same figures. Their ratio says what applying events costs against reading
  everything afresh.

The two are interleaved (catch-up first in odd rounds, baseline first in even ones).

Idle: a replica in a process of its own, connected and current, left to settle, then measured
from /proc over `--seconds`: CPU as a share of one core and wake-ups per second (voluntary +
involuntary context switches of all its threads; tests/support/proc_stats.py), against an
idle asyncio process (a sleeping loop) in the same run, interleaved. Aim: ≤ 0.2 % and ≤ 2/s.

    .venv/bin/python bench/bench_team_catchup.py [--quick] [--events 10000] [--rounds 2]
        [--seconds 20]

The load average is printed beside every figure.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, load_average, parser
from bench_events import _start_serves

from services.api import LOCAL_OPERATOR, Service, open_replica
from services.server_client import ServerClient
from services.store.db import sqlite_url
from tests.support.proc_stats import Usage, measure, wait_until_quiet
from tests.support.world import seed

ANN, BOB = "ann@example.com", "bob@example.com"
PW = "correct horse battery"

_BARE_LOOP = (
    "import asyncio\nasync def main():\n    await asyncio.Event().wait()\nasyncio.run(main())\n"
)
# A replica in its own process: connected, current, then idle until killed.
_IDLE_REPLICA = """
import asyncio, sys
from pathlib import Path
from services.api import open_replica
from services.server_client import ServerClient

async def main():
    client = ServerClient(sys.argv[1], sys.argv[2])
    service, sync = await open_replica(
        data_dir=Path(sys.argv[4]), client=client, person_id=int(sys.argv[3])
    )
    await service.start(mail=False)
    await sync.start()
    await sync.wait_current()
    print("current", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def _current(base: str, token: str, person_id: int, folder: Path) -> tuple[float, float]:
    """(seconds, CPU seconds of this process) from start until the replica is current."""
    client = ServerClient(base, token, timeout_s=600)
    service, sync = await open_replica(data_dir=folder, client=client, person_id=person_id)
    try:
        await service.start(mail=False)
        wall, cpu = time.perf_counter(), time.process_time()
        await sync.start()
        await sync.wait_current()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await sync.stop()
        await service.close()
        await client.close()


async def _post(url: str, count: int, conversation_id: int) -> None:
    service = await Service.open(url=url)
    try:
        for n in range(count):
            await service.post(author=BOB, text=f"while away {n}", conversation_id=conversation_id)
    finally:
        await service.close()


def _idle(cmd: list[str], seconds: float, ready: str | None) -> Usage:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        if ready is not None:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != ready:
                raise SystemExit(f"the idle replica did not get current: {line!r}")
        if wait_until_quiet(proc.pid, timeout_s=60) is None:
            print("   (never went quiet within 60 s; measured anyway)")
        return measure(proc.pid, seconds)
    finally:
        proc.kill()
        proc.wait()


async def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--events", type=int, default=10_000, help="events waiting at each catch-up")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=20.0, help="the idle measurement's length")
    args = p.parse_args()
    events = 300 if args.quick else args.events
    rounds = 1 if args.quick else args.rounds
    seconds = 3.0 if args.quick else args.seconds

    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        folder = Path(tmp)
        url = sqlite_url(folder / "server")
        (folder / "server").mkdir()
        service = await Service.open(data_dir=folder / "server")
        world = await seed(service)
        await service.set_password(acting=LOCAL_OPERATOR, email=ANN, password=PW)
        internal = (await service.item(world.item)).internal_conversation_id
        await service.close()
        (serve,), (base,) = _start_serves(url, folder, 1)
        try:
            async with ServerClient(base) as client:
                await client.sign_in(email=ANN, password=PW, device="bench")
                token = client.token
            assert token is not None
            await _current(base, token, world.ann, folder / "ann")  # loaded, then closed

            print(f"== catch-up: {events:,} events waiting (Bob's posts to Ann), {rounds} round(s)")
            caught: list[tuple[float, float]] = []
            fresh: list[tuple[float, float]] = []
            for r in range(rounds):
                await _post(url, events, internal)
                order = ["catch-up", "snapshot"] if r % 2 == 0 else ["snapshot", "catch-up"]
                for what in order:
                    if what == "catch-up":
                        got = await _current(base, token, world.ann, folder / "ann")
                        caught.append(got)
                    else:
                        got = await _current(base, token, world.ann, folder / f"fresh-{r}")
                        fresh.append(got)
                    print(
                        f"   round {r + 1} {what}: {got[0]:.2f} s until current,"
                        f" CPU {got[1]:.2f} s; load {load_average()}"
                    )
            wall = statistics.median(c[0] for c in caught)
            base_wall = statistics.median(f[0] for f in fresh)
            print(
                f"   median catch-up {wall:.2f} s ({events / wall:,.0f} events/s);"
                f" empty replica from the snapshot {base_wall:.2f} s; ratio {wall / base_wall:.2f}"
            )

            print(f"== idle connected replica over {seconds:g} s, against a sleeping loop")
            replica = [
                sys.executable,
                "-c",
                _IDLE_REPLICA,
                base,
                token,
                str(world.ann),
                str(folder / "ann"),
            ]
            bare = [sys.executable, "-c", _BARE_LOOP]
            for n, (cmd, name, ready) in enumerate(
                [
                    (replica, "replica", "current"),
                    (bare, "bare loop", None),
                    (bare, "bare loop", None),
                    (replica, "replica", "current"),
                ][: 2 if args.quick else 4]
            ):
                usage = _idle(cmd, seconds, ready)
                print(
                    f"   {n + 1}. {name}: CPU {usage.cpu_percent:.3f} % of a core,"
                    f" {usage.wakeups_per_s:.2f} wake-ups/s ({usage.threads} threads);"
                    f" load {load_average()}"
                )
        finally:
            serve.terminate()
            serve.wait(timeout=60)


if __name__ == "__main__":
    asyncio.run(main())
