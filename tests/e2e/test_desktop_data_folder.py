"""D8 (left over from issue 8): a data folder the desktop app cannot create or write in gets one
clear error, said in a dialog and on standard error, with the folder and the reason; never a
traceback, never a half-started app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _desktop(data_dir: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "-v", "--quit-after-shown", "--data-dir", data_dir],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_d8_a_data_folder_that_cannot_be_created_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = _desktop(str(blocker / "data"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [said] = [line for line in done.stderr.splitlines() if line.startswith("deskbell: error:")]
    assert "cannot use '" in said and "' as the data folder (Not a directory)" in said
    assert "cannot-use-data-folder dialog shown" in done.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_d8_a_data_folder_that_cannot_be_written_is_one_clear_error() -> None:
    """/proc/1 exists and is a folder nobody, root included, can create a file in."""
    done = _desktop("/proc/1")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "deskbell: error: cannot write in '/proc/1', the data folder" in done.stderr
