"""D6 (issue 8 item 15) on real X screens: at 150 % on 1600x1000 and 200 % on 1366x768 the
window and its Send button are on the screen, and the place chosen is kept for next time."""

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


def _state(path: Path) -> dict[str, list[int]]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _inside(inner: list[int], outer: list[int]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return x >= ox and y >= oy and x + w <= ox + ow and y + h <= oy + oh


@pytest.mark.parametrize(("size", "scale"), [("1600x1000", "1.5"), ("1366x768", "2")])
def test_d6_window_and_send_button_on_screen_when_scaled(
    tmp_path: Path, size: str, scale: str
) -> None:
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "person", "add",
         "ann@example.com", "--name", "Ann Agent"],
        cwd=ROOT, check=True, capture_output=True, timeout=DEADLINE_S,
    )  # fmt: skip
    server, display = start_xvfb(size)
    state = tmp_path / "state.json"
    env = dict(
        os.environ,
        DISPLAY=display,
        QT_QPA_PLATFORM="xcb",
        QT_SCALE_FACTOR=scale,
        DESKBELL_TEST_STATE_FILE=str(state),
    )
    app = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE_S
        while "frame" not in _state(state) and app.poll() is None:
            assert time.monotonic() < deadline, "the window never showed"
            time.sleep(0.1)
        shown = _state(state)
        assert _inside(shown["frame"], shown["available"]), shown
        assert _inside(shown["send"], shown["available"]), shown
        app.terminate()  # SIGTERM quits through the normal shut-down, which saves the place
        out, _ = app.communicate(timeout=DEADLINE_S)
        assert app.returncode == 0, out[-3000:]
        saved = (data / "desktop.ini").read_text()
        assert "[main_window]" in saved and "rect=" in saved and "splitter=" in saved
    finally:
        for process in (app, server):
            if process.poll() is None:
                process.kill()
                process.wait()
