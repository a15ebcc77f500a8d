"""Start-up of the installed app (issue 13): the frozen bundle vs the same app run from the venv,
and vs a bare PySide6 window, in paired runs (each round runs all three, in a shuffled order).

Each run is `--as ann@example.com --quit-after-shown` offscreen on the same one-user database
(the window shown with its data, then exit); the bare baseline shows an empty QMainWindow and
exits. Measured per process: CPU time (user + system, from the kernel's accounting of the
child) and wall time; medians over the rounds, and the installed/venv ratio per round.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_installed.py [--installed PATH] [--quick]

`--installed` defaults to /usr/bin/deskbell if it exists, else dist/Deskbell/deskbell (build
it with `make package` or packaging/ci-smoke.sh's first two steps). The venv's own sources are
byte-compiled first, so the venv run is what a pip installation starts (this environment sets
PYTHONDONTWRITEBYTECODE, which would otherwise recompile them on every start).
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

BARE = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "app = QApplication(sys.argv[:1])\n"
    "w = QMainWindow(); w.setWindowTitle('bare'); w.resize(1100, 720); w.show()\n"
    "app.processEvents()\n"
)


def run(argv: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process, which must exit 0."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} exited {proc.returncode}: {stderr[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = (
        "/usr/bin/deskbell" if Path("/usr/bin/deskbell").exists() else "dist/Deskbell/deskbell"
    )
    parser.add_argument("--installed", default=default, help=f"the frozen program ({default})")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 rounds: a smoke run")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    installed = str(Path(args.installed).resolve()) if "/" in args.installed else args.installed
    venv_app = str(VENV_BIN / "deskbell")
    for folder in ("app", "ui", "services", "resources"):
        compileall.compile_dir(ROOT / folder, quiet=1)

    with tempfile.TemporaryDirectory(prefix="deskbell-bench-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run(
            [
                venv_app,
                "--data-dir",
                str(data),
                "person",
                "add",
                "ann@example.com",
                "--name",
                "Ann",
                "--admin",
            ],
            check=True,
            capture_output=True,
        )
        # One copy per variant: each start sees the same database, untouched by the others.
        folders = {name: Path(tmp) / name for name in ("installed", "venv")}
        for folder in folders.values():
            shutil.copytree(data, folder)
        commands = {
            name: [
                program,
                "--data-dir",
                str(folders[name]),
                "--as",
                "ann@example.com",
                "--quit-after-shown",
            ]
            for name, program in (("installed", installed), ("venv", venv_app))
        }
        commands["bare PySide6 window"] = [sys.executable, "-c", BARE]
        for argv in commands.values():
            run(argv)  # warm the page cache; not counted
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        wall: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            order = list(commands)
            random.shuffle(order)
            for name in order:
                c, w = run(commands[name])
                cpu[name].append(c)
                wall[name].append(w)
    load = os.getloadavg()
    print(
        f"start-up, {rounds} paired rounds, offscreen; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    print(f"installed: {installed}\nvenv:      {venv_app}")
    print(f"{'':24} {'CPU median':>11} {'wall median':>12}")
    for name in commands:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"{name:24} {c:10.3f}s {w:11.3f}s")
    per_round = [i / v for i, v in zip(cpu["installed"], cpu["venv"], strict=True)]
    bare = statistics.median(cpu["bare PySide6 window"])
    print(
        f"installed / venv, CPU, per round: median {statistics.median(per_round):.2f} "
        f"(min {min(per_round):.2f}, max {max(per_round):.2f})"
    )
    print(
        f"installed / bare window, CPU: {statistics.median(cpu['installed']) / bare:.2f}; "
        f"venv / bare window: {statistics.median(cpu['venv']) / bare:.2f}"
    )


if __name__ == "__main__":
    main()
