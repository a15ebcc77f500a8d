"""`.ci/run`, CI's script, run for real in a copy of its folder with stand-ins for `make` and
packaging/ci-smoke.sh (a test must not install packages, build the bundle or run the suite):

- the packaging smoke runs beside `make check` (both are mostly one core), and its log is
  printed whole afterwards, not interleaved;
- a failing smoke still lets `make test` run, and fails the run after it;
- a failing `make check` stops the run before the tests, with the smoke's log printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# The stand-in `make check` succeeds only once the smoke has started, which it can only do if
# the two run at the same time (a minute's deadline: the machine may be slow).
_MAKE = """#!/bin/sh
echo "make $*" >> "$CALLS"
case "$1" in
  check)
    i=0
    while [ ! -e "$WORK/smoke-started" ]; do
      i=$((i + 1)); [ $i -gt 600 ] && exit 3
      sleep 0.1
    done
    exit "${CHECK_STATUS:-0}";;
  test) exit 0;;
esac
"""
_SMOKE = """#!/bin/sh
touch "$WORK/smoke-started"
echo "ci-smoke: the smoke's own line"
echo "smoke" >> "$CALLS"
exit "${SMOKE_STATUS:-0}"
"""


def _ci(tmp_path: Path, **statuses: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir, packaging = tmp_path / "bin", tmp_path / "packaging"
    bin_dir.mkdir()
    packaging.mkdir()
    for path, body in ((bin_dir / "make", _MAKE), (packaging / "ci-smoke.sh", _SMOKE)):
        path.write_text(body)
        path.chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "WORK": str(tmp_path),
        **statuses,
    }
    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, calls.read_text().splitlines()


@pytest.mark.parametrize("smoke_status", ["0", "1"])
def test_ci_runs_the_smoke_beside_make_check_then_the_tests(
    tmp_path: Path, smoke_status: str
) -> None:
    done, calls = _ci(tmp_path, SMOKE_STATUS=smoke_status)
    assert done.returncode == int(smoke_status), done.stdout + done.stderr
    assert calls[-1] == "make test", calls  # a failed smoke still lets the tests run
    assert calls.index("make system-packages") < calls.index("make check")
    assert "ci-smoke: the smoke's own line" in done.stdout


def test_ci_stops_before_the_tests_when_make_check_fails_and_still_shows_the_smoke_log(
    tmp_path: Path,
) -> None:
    done, calls = _ci(tmp_path, CHECK_STATUS="2")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "make test" not in calls and "smoke" in calls
    assert "ci-smoke: the smoke's own line" in done.stdout
