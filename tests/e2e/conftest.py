"""End-to-end helpers: the `deskbell` command as a real process on a temporary data folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DESKBELL_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DESKBELL_DATABASE_URL", None)
    # tests/conftest.py chose a file keyring for the tests; the child inherits it.
    return env


@dataclass
class Deskbell:
    """Runs `python -m app.cli ...` on one data folder (and on the PostgreSQL database `url`,
    when given); keeps the `serve` processes it started (their logs go to `log_dir`, the data
    folder unless told: a full disk must not stop them)."""

    data_dir: Path
    served: list[subprocess.Popen[str]] = field(default_factory=list)
    log_dir: Path | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # more variables (a keyring of its own)

    def environment(self) -> dict[str, str]:
        return {**_env(self.data_dir), **self.env}

    def _command(self, *args: str) -> list[str]:
        team = ["--database-url", self.url] if self.url else []
        return [sys.executable, "-m", "app.cli", *team, *args]

    def run(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        prefix: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """`prefix` runs it through another command (setpriv, say)."""
        done = subprocess.run(
            [*prefix, *self._command(*args)],
            cwd=ROOT,
            env=self.environment(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"deskbell {' '.join(args)} exited {done.returncode}: {done.stderr}"
            )
        return done

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)

    def _log_path(self, index: int) -> Path:
        return (self.log_dir or self.data_dir) / f"serve-{index}.log"

    def serve(self, *args: str) -> subprocess.Popen[str]:
        log = self._log_path(len(self.served)).open("w")
        proc = subprocess.Popen(
            self._command("serve", *args),
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        log.close()
        self.served.append(proc)
        return proc

    def serve_log(self, index: int = -1) -> str:
        n = index if index >= 0 else len(self.served) + index
        return self._log_path(n).read_text()

    def stop_all(self) -> None:
        for proc in self.served:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def deskbell(tmp_path: Path) -> Iterator[Deskbell]:
    cli = Deskbell(data_dir=tmp_path / "data")
    cli.data_dir.mkdir()
    try:
        yield cli
    finally:
        cli.stop_all()


def wait_until(condition: Callable[[], bool], *, timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes; True if it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()
