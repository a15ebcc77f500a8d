"""The app as a process (offscreen): another process posts through the command line; the app's
count rises (N1, N3, N7: the window title) and, unfocused, the message is emailed (E1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.smtpd import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cli(data: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def _wait(condition: Callable[[], object], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _state(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


@pytest.fixture
def workspace(tmp_path: Path, smtp_server: SmtpServer) -> Path:
    data = tmp_path / "data"
    _cli(data, "person", "add", "ann@example.com", "--name", "Ann Agent")
    _cli(data, "person", "add", "bob@example.com", "--name", "Bob Agent")
    _cli(
        data,
        "item",
        "add",
        "Printer on fire",
        "--follower",
        "ann@example.com",
        "--follower",
        "bob@example.com",
    )
    for key, value in (
        ("smtp.host", smtp_server.host),
        ("smtp.port", str(smtp_server.port)),
        ("smtp.security", "none"),
        ("unseen_delay_s", "1"),
    ):
        _cli(data, "config", "set", key, value)
    return data


@pytest.fixture
def app_process(workspace: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    state = tmp_path / "state.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DESKBELL_TEST_STATE_FILE=str(state))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(workspace), "--as", "ann@example.com"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc, state
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_n1_e1_post_from_another_process_raises_count_and_emails(
    app_process: tuple[subprocess.Popen[str], Path], workspace: Path, smtp_server: SmtpServer
) -> None:
    proc, state = app_process
    _wait(lambda: _state(state).get("title") == "Deskbell", seconds=30)
    _cli(workspace, "post", "1", "--as", "bob@example.com", "--internal", "Are you there, Ann?")
    _wait(lambda: _state(state).get("title") == "(1) Deskbell", seconds=5)
    assert _state(state)["tabs"] == ["Internal (1)", "External"]
    assert proc.poll() is None
    # Offscreen, the window is never active: nothing is seen, so the app's own service emails.
    _wait(lambda: smtp_server.handler.messages, seconds=20)
    mail = smtp_server.handler.messages[0]
    assert "ann@example.com" in str(mail["To"])
    assert "Printer on fire" in str(mail["Subject"])


def test_quit_after_shown_exits_zero(workspace: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "--data-dir",
            str(workspace),
            "--as",
            "ann@example.com",
            "--quit-after-shown",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
