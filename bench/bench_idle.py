"""What an idle Deskbell costs: CPU and wake-ups of `deskbell serve` and the desktop app (issue 9).

A seeded data folder (3 people, 20 items, 400 messages from Bob in the items' internal
conversations, a few unseen; the users' emails are off and the customer is in no internal
conversation, so nothing falls due: an external post would email the customer a minute later,
work that would land in the measured window). Each process is started, left to settle (its
start-up work done: the window shown with its data, or `serve` running), then measured from
/proc over `--seconds`: CPU (utime + stime) as a share of one core, and wake-ups per second
(voluntary + involuntary context switches of all its threads; tests/support/proc_stats.py).
Baselines in the same run: an idle asyncio process (a sleeping loop) and an idle bare PySide6
window (offscreen), which cost nothing: the figures are absolute, the aim ≤ 0.2 % of a core
and ≤ 2 wake-ups/s.

    .venv/bin/python bench/bench_idle.py [--quick] [--seconds 30] [--settle 5]

With PostgreSQL's server binaries installed, `serve` and the desktop app are measured on a
private cluster too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, load_average, parser

from tests.support.proc_stats import Usage, measure, wait_until_quiet

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@customer.org"

_BARE_LOOP = (
    "import asyncio\nasync def main():\n    await asyncio.Event().wait()\nasyncio.run(main())\n"
)
_BARE_WINDOW = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication, QListView, QMainWindow\n"
    "app = QApplication(sys.argv)\n"
    "w = QMainWindow(); w.setCentralWidget(QListView()); w.resize(1000, 700); w.show()\n"
    "app.exec()\n"
)


async def _seed(where: dict[str, object]) -> None:
    from services.api import ConversationKind, NotificationSettings, PersonKind, Service

    service = await Service.open(**where)  # type: ignore[arg-type]
    try:
        for email, name, kind in (
            (ANN, "Ann", PersonKind.USER),
            (BOB, "Bob", PersonKind.USER),
            (CARL, "Carl", PersonKind.CUSTOMER),
        ):
            person = await service.add_person(email=email, name=name, kind=kind)
            if kind == PersonKind.USER:  # nothing falls due: nobody is emailed
                await service.set_notification_settings(
                    person_id=person.id,
                    settings=NotificationSettings(email=False, sound=False),
                )
        for n in range(20):
            item = await service.create_item(title=f"Item {n}", followers=[ANN, BOB, CARL])
            for m in range(20):
                posted = await service.post(
                    author=BOB,
                    text=f"Message {m} about item {n}",
                    item_number=item.number,
                    kind=ConversationKind.INTERNAL,  # the customer gets no email
                )
                if n >= 3:  # the first three items keep their unseen messages
                    me = await service.person(ANN)
                    await service.mark_seen(person_id=me.id, message_ids=[posted.message_id])
    finally:
        await service.close()


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    return env


def _idle(
    name: str,
    argv: list[str],
    *,
    ready: Callable[[], bool],
    log: Path,
    seconds: float,
    settle: float,
    env: dict[str, str] | None = None,
) -> Usage:
    """Start `argv`, wait until `ready()`, let it settle, measure it."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=_env(**(env or {})), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 300
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        time.sleep(settle)  # start-up's own work (first pages, the first scheduler pass)
        wait_until_quiet(proc.pid, timeout_s=settle)  # a little more, if it quietens
        usage = measure(proc.pid, seconds)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"   {name:44} {usage}; load average {load_average()}")
    sys.stdout.flush()
    return usage


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="how long each is measured")
    p.add_argument("--settle", type=float, default=5.0, help="seconds left to settle first")
    args = p.parse_args()
    seconds, settle = (3.0, 1.0) if args.quick else (args.seconds, args.settle)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-idle-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        data.mkdir()
        asyncio.run(_seed({"data_dir": data}))
        cli = [py, "-m", "app.cli", "--data-dir", str(data)]
        print(f"== idle, measured over {seconds:.0f} s each (aim ≤ 0.2 % CPU, ≤ 2 wake-ups/s)")
        results = {
            name: _idle(
                name,
                [py, "-c", script],
                ready=lambda: True,
                log=folder / f"bare-{n}.log",
                seconds=seconds,
                settle=settle,
            )
            for n, (name, script) in enumerate(
                (
                    ("bare asyncio loop (baseline)", _BARE_LOOP),
                    ("bare QMainWindow + QListView (baseline)", _BARE_WINDOW),
                )
            )
        }
        results.update(
            {
                "deskbell serve (SQLite)": _serve(cli, folder, "sqlite", seconds, settle),
                "desktop app, shown, no input (SQLite)": _desktop(
                    cli, folder, "sqlite", seconds, settle
                ),
            }
        )
        results.update(_postgres(folder, seconds, settle))
    met = [
        name
        for name, u in results.items()
        if "baseline" not in name and u.cpu_percent <= 0.2 and u.wakeups_per_s <= 2
    ]
    measured = [n for n in results if "baseline" not in n]
    print(f"   aim met by {len(met)} of {len(measured)}: {', '.join(met) or 'none'}")
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")


def _serve(cli: list[str], folder: Path, engine: str, seconds: float, settle: float) -> Usage:
    log = folder / f"serve-{engine}.log"
    return _idle(
        f"deskbell serve ({ {'sqlite': 'SQLite'}.get(engine, 'PostgreSQL') })",
        [*cli, "serve"],
        ready=lambda: "service running" in log.read_text(),  # serve writes no state file
        log=log,
        seconds=seconds,
        settle=settle,
    )


def _desktop(cli: list[str], folder: Path, engine: str, seconds: float, settle: float) -> Usage:
    name = f"desktop app, shown, no input ({ {'sqlite': 'SQLite'}.get(engine, 'PostgreSQL') })"
    state = folder / f"desktop-state-{engine}.json"  # written once the window shows its data
    return _idle(
        name,
        [*cli, "--as", ANN],
        ready=state.exists,
        log=folder / f"desktop-{engine}.log",
        env={"DESKBELL_TEST_STATE_FILE": str(state)},
        seconds=seconds,
        settle=settle,
    )


def _postgres(folder: Path, seconds: float, settle: float) -> dict[str, Usage]:
    from tests.support.postgres import PostgresUnavailable, start_cluster

    try:
        cluster = start_cluster(lambda url: None)
    except PostgresUnavailable as exc:
        print(f"   PostgreSQL skipped: {exc}")
        return {}
    try:
        url = cluster.url(cluster.create_database(template="template0"))
        asyncio.run(_seed({"url": url}))
        cli = [sys.executable, "-m", "app.cli", "--database-url", url]
        return {
            "deskbell serve (PostgreSQL)": _serve(cli, folder, "postgresql", seconds, settle),
            "desktop app, shown, no input (PostgreSQL)": _desktop(
                cli, folder, "postgresql", seconds, settle
            ),
        }
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
