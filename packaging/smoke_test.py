"""The smoke test of a frozen or installed Deskbell, the same on every platform (stdlib only).

    python packaging/smoke_test.py --cli /usr/bin/deskbell
    python packaging/smoke_test.py --cli dist/Deskbell/deskbell-cli.exe \
        --gui dist/Deskbell/Deskbell.exe --demo --screenshot shots/windows.png \
        --grab-python .venv/Scripts/python.exe

Steps, each printed with its time, the first failure ends the run with exit status 1:
1. `--version` and `--help` answer;
2. migrations run in an empty folder: `config list` creates `deskbell.db` there;
3. a command-line round trip: people, an item, a message, read back as JSON;
4. `--quit-after-shown` offscreen on that folder: the window shows with its data;
5. `--demo` (with `--demo`, on the display the caller provides: Xvfb on Linux CI, the runner's
   desktop elsewhere): the window shows the demo's unread messages; `--screenshot` grabs the
   screen (with Qt through `--grab-python`, or `screencapture` on macOS); then it is stopped;
6. with `--database-url`, the round trip again against that PostgreSQL database;
7. with `--keyring-absent` (CI, where no Secret Service runs): `smtp password` loads the
   keyring's backends (on Linux: SecretStorage and `cryptography`) and refuses in one line.

`--trace DIR` (Linux) records every shared library each run loads (LD_DEBUG=files) for
packaging/size_report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

STEP_TIMEOUT_S = 180  # a shared, slow machine: generous, never a measurement


class SmokeFailure(Exception):
    pass


class Runner:
    def __init__(self, cli: str, gui: str, *, trace: Path | None) -> None:
        self.cli = cli
        self.gui = gui
        self.trace = trace
        self.count = 0

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, **extra)
        env.pop("DESKBELL_DATA_DIR", None)
        if self.trace is not None:
            self.count += 1
            self.trace.mkdir(parents=True, exist_ok=True)
            env["LD_DEBUG"] = "files"
            env["LD_DEBUG_OUTPUT"] = str(self.trace / f"ld-{self.count:02d}")
        return env

    def run(self, *args: str, program: str | None = None, **env: str) -> str:
        argv = [program or self.cli, *args]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            raise SmokeFailure(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout.strip()


def wait_for(condition: Callable[[], bool], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out waiting for {what}")
        time.sleep(0.2)


def round_trip(r: Runner, *where: str) -> None:
    r.run(*where, "person", "add", "ann@example.com", "--name", "Ann Agent", "--admin")
    r.run(*where, "person", "add", "bob@example.com", "--name", "Bob Agent")
    number = r.run(
        *where,
        "item",
        "add",
        "Printer on fire",
        "--follower",
        "ann@example.com",
        "--follower",
        "bob@example.com",
    )
    text = "Smoke test: the printer is on fire again"
    r.run(*where, "post", number, "--as", "bob@example.com", "--internal", text)
    shown = json.loads(r.run(*where, "item", "show", number, "--json"))
    if text not in json.dumps(shown):
        raise SmokeFailure(f"item show does not hold the message: {shown}")


def no_keyring(r: Runner, *where: str) -> None:
    """Only where no keyring runs: a stored password on a real desktop would be overwritten."""
    done = subprocess.run(
        [r.cli, *where, "smtp", "password"],
        input="not-a-real-password\n",
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        env=r.env(),
        check=False,
    )
    if done.returncode != 1 or "No keyring to keep passwords in" not in done.stderr:
        raise SmokeFailure(f"smtp password without a keyring ({done.returncode}):\n{done.stderr}")
    if "Traceback" in done.stderr:
        raise SmokeFailure(f"smtp password crashed:\n{done.stderr}")


def read_state(path: Path) -> dict[str, object] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def demo(r: Runner, work: Path, *, screenshot: Path | None, grab_python: str | None) -> None:
    state_file = work / "demo-state.json"
    proc = subprocess.Popen(
        [r.gui, "--demo", "--data-dir", str(work / "demo")],
        env=r.env(DESKBELL_TEST_STATE_FILE=str(state_file)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: (read_state(state_file) or {}).get("total", 0) != 0 or proc.poll() is not None,
            seconds=STEP_TIMEOUT_S,
            what="the demo window with its unread messages",
        )
        if proc.poll() is not None:
            raise SmokeFailure(f"the demo exited {proc.returncode}:\n{proc.communicate()[0]}")
        print(f"smoke:   demo window: {read_state(state_file)}")
        if screenshot is not None:
            time.sleep(1)  # let the window paint its first page before the grab
            grab(screenshot, grab_python)
    finally:
        if proc.poll() is None:
            if sys.platform == "win32":
                proc.terminate()  # no signals on Windows; the data is committed already
            else:
                proc.send_signal(signal.SIGTERM)  # the app's normal shut-down
        output = proc.communicate(timeout=STEP_TIMEOUT_S)[0]
    if sys.platform != "win32" and proc.returncode != 0:
        raise SmokeFailure(f"the demo did not stop cleanly ({proc.returncode}):\n{output}")


GRAB = (
    "import sys\n"
    "from PySide6.QtGui import QGuiApplication\n"
    "app = QGuiApplication([])\n"
    "sys.exit(0 if app.primaryScreen().grabWindow(0).save(sys.argv[1]) else 1)\n"
)


def grab(target: Path, grab_python: str | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if sys.platform == "darwin":
        command = ["screencapture", "-x", str(target)]
    elif grab_python:
        command = [grab_python, "-c", GRAB, str(target)]
    else:
        raise SmokeFailure("--screenshot needs --grab-python (a Python with PySide6) here")
    subprocess.run(command, check=True, timeout=STEP_TIMEOUT_S, env=dict(os.environ))
    data = target.read_bytes()
    if not data.startswith(b"\x89PNG") or len(data) < 4096:
        raise SmokeFailure(f"the screenshot {target} is not a picture of a screen")
    print(f"smoke:   screenshot: {target} ({len(data) // 1024} KB)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", required=True, help="the command-line program")
    parser.add_argument("--gui", help="the windowed program (default: --cli)")
    parser.add_argument("--demo", action="store_true", help="run the demo on the display")
    parser.add_argument("--screenshot", type=Path, help="PNG of the screen during the demo")
    parser.add_argument("--grab-python", help="a Python with PySide6, to take the screenshot")
    parser.add_argument("--database-url", help="also run the round trip on this PostgreSQL")
    parser.add_argument(
        "--keyring-absent",
        action="store_true",
        help="no system keyring runs here: check the backends load and refuse cleanly",
    )
    parser.add_argument("--trace", type=Path, help="folder for LD_DEBUG=files logs (Linux)")
    args = parser.parse_args(argv)
    r = Runner(args.cli, args.gui or args.cli, trace=args.trace)

    with tempfile.TemporaryDirectory(prefix="deskbell-smoke-") as tmp:
        work = Path(tmp)
        data = ["--data-dir", str(work / "data")]
        empty = work / "empty"
        empty.mkdir()

        def migrations() -> None:
            r.run("--data-dir", str(empty), "config", "list")
            if not (empty / "deskbell.db").is_file():
                raise SmokeFailure("config list in an empty folder created no deskbell.db")

        def shown() -> None:
            state_file = work / "shown-state.json"
            r.run(
                *data,
                "--as",
                "ann@example.com",
                "--quit-after-shown",
                program=r.gui,
                QT_QPA_PLATFORM="offscreen",
                DESKBELL_TEST_STATE_FILE=str(state_file),
            )
            state = read_state(state_file)
            if not state or state.get("total") != 1:
                raise SmokeFailure(f"the window did not show the one unread message: {state}")

        steps: list[tuple[str, Callable[[], object]]] = [
            ("version and help", lambda: (r.run("--version"), r.run("--help"))),
            ("migrations in an empty folder", migrations),
            ("command-line round trip", lambda: round_trip(r, *data)),
            ("--quit-after-shown offscreen", shown),
        ]
        if args.demo:
            steps.append(
                (
                    "demo on the display",
                    lambda: demo(r, work, screenshot=args.screenshot, grab_python=args.grab_python),
                )
            )
        if args.database_url:
            steps.append(
                (
                    "round trip on PostgreSQL",
                    lambda: round_trip(r, "--database-url", args.database_url),
                )
            )
        if args.keyring_absent:
            steps.append(("keyring backends load", lambda: no_keyring(r, *data)))
        for name, step in steps:
            started = time.monotonic()
            try:
                step()
            except (SmokeFailure, subprocess.SubprocessError, OSError) as exc:
                print(f"smoke: {name}: FAILED\n{exc}", file=sys.stderr)
                return 1
            print(f"smoke: {name}: ok ({time.monotonic() - started:.1f} s)")
    print(f"smoke: all {len(steps)} steps ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
