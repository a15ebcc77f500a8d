"""D1: an X server that goes away ends the app with one log line and a clean shut-down (the
service closed, so what the mail server accepted is recorded), not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.xvfb.xserver import start_xvfb

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 120
pytestmark = pytest.mark.xvfb


def _shown(state: Path) -> bool:
    try:
        return bool(json.loads(state.read_text()).get("title"))
    except (OSError, ValueError):
        return False


def test_d1_losing_the_display_quits_cleanly_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "person", "add",
         "ann@example.com", "--name", "Ann Agent"],
        cwd=ROOT, check=True, capture_output=True, timeout=DEADLINE_S,
    )  # fmt: skip
    server, display = start_xvfb()
    state = tmp_path / "state.json"
    env = dict(
        os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", DESKBELL_TEST_STATE_FILE=str(state)
    )
    app = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "-v", "--data-dir", str(data)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not _shown(state) and app.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.poll() is None, "the app ended before it showed its window"
        server.terminate()
        server.wait(timeout=DEADLINE_S)
        out, _ = app.communicate(timeout=DEADLINE_S)
    finally:
        for process in (app, server):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "Traceback" not in out, out[-3000:]
    assert app.returncode == 1, out[-3000:]
    errors = [line for line in out.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "lost the connection to the display" in errors[0], out[-3000:]
    assert "stop: service closed" in out, out[-3000:]
