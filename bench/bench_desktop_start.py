"""Start → window shown with data, 100,000 messages: CPU and peak memory vs a bare window.

The database of bench/bench_desktop.py (100,000 messages in 5,000 conversations). In paired,
interleaved runs (bare, app, app, bare, ...) each process is started offscreen and read from
/proc the moment it says its window is shown (the `DESKBELL_TEST_STATE_FILE` it writes; the
app writes it once the window holds its first page): CPU time (utime + stime, every thread),
peak resident memory (VmHWM) and wall time since spawn. Baseline: a bare PySide6 script with a
QMainWindow and a QListView showing 200 rows, which writes the same file when shown.

Both run with compiled bytecode, as an installed app does (its wheel or bundle ships .pyc): a
bytecode cache in the run's temporary folder, filled by the warm-up starts. Where the
environment sets PYTHONDONTWRITEBYTECODE (this machine does), a source checkout otherwise
compiles every module of the app on every start; `--compile-each-start` measures that.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_desktop_start.py [--quick] [--runs 5]
        [--keep DIR] [--compile-each-start]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, parser, shown
from bench_desktop import ANN, build_database

from services.store.db import DB_FILENAME
from tests.support.proc_stats import sample

BARE = r"""
import json, os, sys, time
from PySide6.QtCore import QStringListModel
from PySide6.QtWidgets import QApplication, QListView, QMainWindow
app = QApplication(sys.argv[:1])
w = QMainWindow(); w.setWindowTitle("bare"); w.resize(1100, 720)
view = QListView(); view.setModel(QStringListModel([f"Row {i}: words words" for i in range(200)]))
w.setCentralWidget(view); w.show()
app.processEvents()
out = os.environ["DESKBELL_TEST_STATE_FILE"]
open(out + ".tmp", "w").write(json.dumps({"shown": time.time()})); os.replace(out + ".tmp", out)
app.exec()
"""


@dataclass(frozen=True)
class Start:
    cpu_s: float
    peak_mb: float
    wall_s: float


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _start(cmd: list[str], state: Path, env: dict[str, str]) -> Start:
    with shown(cmd, state=state, env={**env, "QT_QPA_PLATFORM": "offscreen"}) as (proc, t0):
        wall = time.time() - t0
        now = sample(proc.pid)
        peak = _peak_mb(proc.pid)
    return Start(cpu_s=now.cpu_s, peak_mb=peak, wall_s=wall)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="pairs of runs")
    p.add_argument("--keep", type=Path, help="build (or reuse) the database here")
    p.add_argument(
        "--compile-each-start",
        action="store_true",
        help="no bytecode cache where PYTHONDONTWRITEBYTECODE is set (a source checkout here)",
    )
    args = p.parse_args()
    conversations, messages, big = (200, 4_000, 1_000) if args.quick else (5_000, 100_000, 10_000)
    runs = 2 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-start-") as tmp:
        folder = args.keep or Path(tmp) / "data"
        if not (folder / DB_FILENAME).exists():
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            build_database(folder, conversations=conversations, messages=messages, big=big)
            print(f"   built {messages:,} messages in {time.perf_counter() - t0:.1f} s")
        state = Path(tmp) / "state.json"
        app = [sys.executable, "-m", "app.cli", "--data-dir", str(folder), "--as", ANN]
        bare = [sys.executable, "-c", BARE]
        env = dict(os.environ)
        if not args.compile_each_start:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "bytecode")
        cached = "PYTHONDONTWRITEBYTECODE" not in env
        print(f"   bytecode: {'cached' if cached else 'compiled at each start'}")
        _start(app, state, env)  # warm the page cache, the bytecode and one-off work
        _start(bare, state, env)
        results: dict[str, list[Start]] = {"app": [], "bare": []}
        for r in range(runs):
            order = ("bare", "app") if r % 2 == 0 else ("app", "bare")
            for name in order:
                results[name].append(_start(app if name == "app" else bare, state, env))
            a, b = results["app"][-1], results["bare"][-1]
            print(
                f"   pair {r + 1}/{runs}: app {a.cpu_s:.2f} s CPU, {a.peak_mb:.0f} MB, "
                f"{a.wall_s:.2f} s; bare {b.cpu_s:.2f} s CPU, {b.peak_mb:.0f} MB, {b.wall_s:.2f} s;"
                f" load average {load_average()}"
            )
    med = statistics.median

    def m(name: str, field: str) -> float:
        return med(getattr(s, field) for s in results[name])

    print(f"== start → window shown with data ({messages:,} messages), medians of {runs} pairs")
    for field, unit, aim in (
        ("cpu_s", "s CPU", "≤ 4"),
        ("peak_mb", "MB peak memory", "≤ 2.2"),
        ("wall_s", "s wall", "—"),
    ):
        app_v, bare_v = m("app", field), m("bare", field)
        print(
            f"   {unit}: app {app_v:.2f}, bare QMainWindow + QListView {bare_v:.2f}: "
            f"ratio {app_v / bare_v:.2f} (aim {aim})"
        )
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
