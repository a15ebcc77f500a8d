"""`make` for a new user (issue 8, item 21): the real Makefile, run by the real `make`, with
stand-ins only for what a test must not do for real (install packages, run the whole suite).

- `make test` runs the Xvfb half even when the first half fails, and still fails;
- `make system-packages` runs `apt-get update` only when a package is missing, installs only
  what is missing, and tells apt to wait for its lock instead of failing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _make(*args: str, path_dirs: list[Path], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([*map(str, path_dirs), env["PATH"]])
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_make_test_runs_the_xvfb_half_after_a_failing_first_half_and_still_fails(
    tmp_path: Path,
) -> None:
    if not all(shutil.which(t) for t in ("xvfb-run", "dbus-run-session", "trayer")):
        pytest.skip("tests/xvfb/run.sh needs xvfb-run, dbus-run-session and trayer")
    calls = tmp_path / "calls"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # A stand-in interpreter: records what it was asked to run, and fails.
    _script(venv / "bin" / "python", f'echo "$*" >> {calls}\nexit 1\n')
    _script(venv / "bin" / "deskbell", "exit 0\n")
    done = _make(
        "-o", "system-packages", "-o", f"{venv}/bin/deskbell", "test", f"VENV={venv}", path_dirs=[]
    )
    runs = [line for line in calls.read_text().splitlines() if "-m pytest" in line]
    assert done.returncode != 0, done
    assert len(runs) == 2, (runs, done.stderr)
    assert "--ignore=tests/xvfb" in runs[0]
    # The offscreen half on parallel workers (pytest-xdist): one per CPU, at most 4.
    workers = runs[0].split()[runs[0].split().index("-n") + 1]
    cpus = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    assert workers == str(min(cpus, 4)), runs[0]
    assert "tests/xvfb" in runs[1] and "--ignore" not in runs[1]


def _fake_apt(tmp_path: Path, *, missing: set[str]) -> tuple[Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    _script(bin_dir / "apt-get", f'echo "$*" >> {log}\n')
    # dpkg-query -W -f='${{Status}}\n' PACKAGE: installed unless listed as missing.
    cases = "|".join(sorted(missing)) or "__none__"
    _script(
        bin_dir / "dpkg-query",
        f'eval "p=\\${{$#}}"\ncase "$p" in {cases}) exit 1;; esac\necho "install ok installed"\n',
    )
    _script(bin_dir / "sudo", '"$@"\n')
    return bin_dir, log


def test_system_packages_touches_apt_only_when_a_package_is_missing(tmp_path: Path) -> None:
    bin_dir, log = _fake_apt(tmp_path, missing=set())
    done = _make("system-packages", path_dirs=[bin_dir])
    assert done.returncode == 0, done.stderr
    assert not log.exists()  # no `apt-get update` on every `make demo`


def test_system_packages_updates_then_installs_only_what_is_missing_waiting_for_the_lock(
    tmp_path: Path,
) -> None:
    bin_dir, log = _fake_apt(tmp_path, missing={"trayer", "dunst"})
    done = _make("system-packages", path_dirs=[bin_dir])
    assert done.returncode == 0, done.stderr
    update, install = log.read_text().splitlines()
    assert "DPkg::Lock::Timeout=600" in update and update.endswith("update -qq")
    assert "DPkg::Lock::Timeout=600" in install and "install" in install
    assert install.split()[-2:] == ["trayer", "dunst"]
