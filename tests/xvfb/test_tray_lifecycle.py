"""D1 (issue 8 item 16) on a real X screen: an app started before the tray host gets its tray
icon when the host appears (autostart before the panel); when the host dies, the app knows
there is no tray any more (so closing minimizes, it does not hide into nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.xvfb.xserver import start_xvfb

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 120
pytestmark = pytest.mark.xvfb


def _cli(data: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), *args],
        cwd=ROOT, check=True, capture_output=True, timeout=DEADLINE_S,
    )  # fmt: skip


def _state(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _wait(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _icon_docked(state: Path) -> bool:
    icon = _state(state).get("tray_icon")
    return isinstance(icon, list) and icon[2] > 0


def test_d1_tray_icon_docks_when_the_tray_starts_after_the_app(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _cli(data, "person", "add", "ann@example.com", "--name", "Ann Agent")
    _cli(data, "person", "add", "bob@example.com", "--name", "Bob Agent")
    _cli(data, "item", "add", "Printer on fire", "--follower", "ann@example.com",
         "--follower", "bob@example.com")  # fmt: skip
    server, display = start_xvfb("1024x768")
    state = tmp_path / "state.json"
    env = dict(
        os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", DESKBELL_TEST_STATE_FILE=str(state)
    )
    app = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "--as", "ann@example.com"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    trayer: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: "tray_icon" in _state(state) or app.poll() is not None, "the window")
        assert app.poll() is None
        assert _state(state)["tray_available"] is False and not _icon_docked(state)

        trayer = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
             "--height", "28"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        n = 0

        def post_and_check(condition: Callable[[], bool]) -> Callable[[], bool]:
            def check() -> bool:
                nonlocal n
                n += 1  # each post makes the app write its state again
                _cli(data, "post", "1", "--as", "bob@example.com", "--internal", f"ping {n}")
                time.sleep(0.5)
                return condition()

            return check

        _wait(post_and_check(lambda: _icon_docked(state)), "the icon in the tray")
        assert _state(state)["tray_available"] is True

        trayer.kill()
        trayer.wait()
        _wait(
            post_and_check(lambda: _state(state)["tray_available"] is False),
            "the app to see the tray gone",
        )
        assert app.poll() is None  # still running, reachable
    finally:
        for process in (app, trayer, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        if app.stdout is not None:
            app.stdout.close()
