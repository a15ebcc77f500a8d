"""Hostile input to the installed `deskbell` as real processes (issue 8, "Prove it"; M8).

`tests/unit/app/test_cli_hostile.py` covers every command and argument through `main()`;
these check that the same holds where only a real process can show it: bytes in argv that are
not UTF-8, bytes on stdin, the console script itself, and `--version`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Deskbell, _env

ANN = "ann@example.com"
SCRIPT = Path(sys.executable).with_name("deskbell")


def _dump(cli: Deskbell) -> list[str]:
    with contextlib.closing(sqlite3.connect(cli.data_dir / "deskbell.db")) as conn:
        return list(conn.iterdump())


def _deskbell(
    cli: Deskbell, *args: bytes, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=ROOT,
        env=_env(cli.data_dir),
        input=stdin,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def seeded(deskbell: Deskbell) -> Deskbell:
    deskbell.out("person", "add", ANN, "--name", "Ann Agent")
    deskbell.out("item", "add", "Printer on fire", "--follower", ANN)
    deskbell.out("post", "1", "--as", ANN, "--internal", "first note")
    return deskbell


HOSTILE = {
    "argv not UTF-8": ([b"post", b"1", b"--as", ANN.encode(), b"--internal", b"caf\xe9"], b""),
    "argv encoded surrogate": ([b"item", b"add", b"ab\xed\xa0\x80cd"], b""),
    "stdin not UTF-8": ([b"post", b"1", b"--as", ANN.encode(), b"--internal", b"-"], b"\xff\xfe"),
    "number past 64 bits": ([b"item", b"show", b"99999999999999999999"], b""),
    "number 1e3": ([b"seen", b"1e3", b"--as", ANN.encode()], b""),
    "superscript port": ([b"config", b"set", b"smtp.port", "\u00b2".encode()], b""),
    "5,000-digit delay": ([b"config", b"set", b"unseen_delay_s", b"9" * 5000], b""),
    "quoted address with CR/LF": ([b"person", b"add", b'"a\r\nb" <x@y.org>', b"--name", b"X"], b""),
    "bogus item status": ([b"item", b"status", b"1", b"bogus"], b""),
    "bogus email status": ([b"emails", b"--status", b"bogus"], b""),
    "60,000-character search": ([b"emails", b"--search", b"x" * 60_000], b""),
    "host with a space": ([b"config", b"set", b"smtp.host", b"mail example.com"], b""),
    "password not UTF-8": ([b"smtp", b"password"], b"p\xe4ss\n"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_m8_hostile_input_to_the_installed_command(seeded: Deskbell, case: str) -> None:
    args, stdin = HOSTILE[case]
    before = _dump(seeded)
    done = _deskbell(seeded, *args, stdin=stdin)
    lines = done.stderr.decode("utf-8", "replace").splitlines()
    assert done.returncode == 1, done
    assert len(lines) == 1 and lines[0].startswith("deskbell: error: "), lines
    assert done.stdout == b""
    assert _dump(seeded) == before


def test_m8_version_and_help(deskbell: Deskbell) -> None:
    from importlib.metadata import version

    done = _deskbell(deskbell, b"--version")
    assert (done.returncode, done.stdout.decode().strip()) == (0, f"deskbell {version('deskbell')}")
    done = _deskbell(deskbell, b"--help")
    assert done.returncode == 0
    assert b"--quit-after-shown" not in done.stdout and b"--version" in done.stdout
