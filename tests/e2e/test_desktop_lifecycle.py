"""The desktop app's own lifecycle as a process (offscreen): a signal quits through the normal
shut-down, which closes the service (D1, E7); `--quit-after-shown` exits on an empty data folder
(the first-run dialog is shown, then the app leaves); no display gives one line, exit 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
DEADLINE_S = 120  # a busy machine can be ten times slower than usual


def _wait(condition: Callable[[], object], *, seconds: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _shown(state: Path) -> bool:
    try:
        return bool(json.loads(state.read_text()).get("title"))
    except (OSError, ValueError):
        return False


def _app(data: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "-v", "--data-dir", str(data), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"the app did not exit:\n{out[-3000:]}") from None
    return proc.returncode, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_d1_a_signal_quits_through_the_normal_shut_down(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "person", "add",
         "ann@example.com", "--name", "Ann Agent"],
        cwd=ROOT, check=True, capture_output=True, timeout=DEADLINE_S,
    )  # fmt: skip
    state = tmp_path / "state.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DESKBELL_TEST_STATE_FILE=str(state))
    proc = _app(data, env=env)
    try:
        _wait(lambda: _shown(state) or proc.poll() is not None)
        assert proc.poll() is None
        proc.send_signal(sig)
        code, out = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, out[-3000:]
    assert "Traceback" not in out
    assert f"{sig.name}: quitting" in out
    assert "stop: service closed" in out  # what the server accepted was recorded (E7)


def test_quit_after_shown_exits_on_an_empty_data_folder(tmp_path: Path) -> None:
    """The first-run dialog is modal: shown, then the app exits (benchmarks, smoke tests)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    code, out = _finish(_app(tmp_path / "empty", "--quit-after-shown", env=env))
    assert code == 0, out[-3000:]
    assert "first-run dialog shown" in out


def test_without_a_display_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=DEADLINE_S,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("deskbell: error: ") and "display" in lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("where", "args"),
    [
        ("a-file", ()),  # the data folder is a file
        ("a-file/sub", ()),  # a file stands where a folder must be
        ("a-file", ("--demo",)),  # the demo's folder inside it
    ],
)
def test_d8_a_data_folder_that_cannot_be_used_one_line_and_exit_1(
    tmp_path: Path, where: str, args: tuple[str, ...]
) -> None:
    """D8: the desktop app names the folder and the reason in one line (and, started from a
    menu, in a dialog), instead of a traceback."""
    (tmp_path / "a-file").write_text("not a folder")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / where),
         "--quit-after-shown", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=DEADLINE_S,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("deskbell: error: cannot use ") and "data folder" in lines[0]
    assert (tmp_path / "a-file").read_text() == "not a folder"
