"""T5, T3, N3 as processes: the desktop app (offscreen, counts in DESKBELL_TEST_STATE_FILE)
signed in to a plain `deskbell serve` on loopback. Another agent's post on the server raises
its count; with the server stopped the quiet indicator says offline and the window goes on;
what was posted meanwhile arrives once when the server is back. Only the server emails (its
aiosmtpd gets Ann's notification); the desktop opens no SMTP connection, even with SMTP
settings in its replica pointing at a trap."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.secrets import SecretStore
from services.team.account import AccountStore, TeamAccount
from services.team.signin import sign_in_to_team
from tests.e2e.conftest import ROOT, Deskbell, wait_until
from tests.e2e.test_cli_remote import SERVING
from tests.support.smtpd import SmtpServer, free_port

ANN, BOB, PW = "ann@example.com", "bob@example.com", "correct horse battery"
DEADLINE_S = 120.0  # generous: the machine is shared and can be ten times slower


def _state(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _until(condition: Callable[[], object], what: str, log: Path) -> None:
    if not wait_until(lambda: bool(condition()), timeout_s=DEADLINE_S, step_s=0.1):
        raise AssertionError(f"not {what} after {DEADLINE_S} s; desktop log:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Deskbell]:
    served = Deskbell(data_dir=tmp_path / "server")
    served.run("user", "add", ANN, "--name", "Ann Agent", "--admin")
    served.run("user", "add", BOB, "--name", "Bob Agent")
    for email in (ANN, BOB):
        served.run("user", "password", email, stdin=PW + "\n")
    served.run("item", "add", "Printer on fire", "--follower", ANN, "--follower", BOB)
    for key, value in (
        ("smtp.host", smtp_server.host),
        ("smtp.port", str(smtp_server.port)),
        ("smtp.security", "none"),
        ("unseen_delay_s", "1"),
    ):
        served.run("config", "set", key, value)
    try:
        yield served
    finally:
        served.stop_all()


def _serve(server: Deskbell, port: int) -> subprocess.Popen[str]:
    proc = server.serve("--listen", f"127.0.0.1:{port}")
    assert wait_until(
        lambda: SERVING.search(server.serve_log()) is not None or proc.poll() is not None,
        timeout_s=DEADLINE_S,
    ), server.serve_log()
    assert proc.poll() is None, server.serve_log()
    return proc


def test_t5_t3_n3_a_desktop_signed_in_to_serve_counts_goes_offline_and_never_emails(
    tmp_path: Path, server: Deskbell, smtp_server: SmtpServer
) -> None:
    port = free_port()
    serving = _serve(server, port)
    url = f"http://127.0.0.1:{port}"
    desk = tmp_path / "desk"
    # The account as the first-run dialog saves it; the token in the tests' file keyring,
    # which the desktop process inherits (tests/conftest.py).
    new = asyncio.run(sign_in_to_team(server_url=url, email=ANN, password=PW, device="e2e"))
    AccountStore(desk, secrets=SecretStore()).save(new.account, new.token)
    with SmtpServer() as trap:
        # Even SMTP settings in the replica itself must not make the desktop send (T3).
        replica = Deskbell(data_dir=desk / "team")
        for key, value in (("smtp.host", trap.host), ("smtp.port", str(trap.port))):
            replica.run("config", "set", key, value)
        replica.run("config", "set", "smtp.security", "none")
        state, log = tmp_path / "state.json", tmp_path / "desktop.log"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DESKBELL_TEST_STATE_FILE=str(state))
        with log.open("w") as out:
            app = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "--data-dir", str(desk)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            _until(lambda: _state(state).get("connection") == "Connection: online", "online", log)
            assert _state(state)["total"] == 0

            # Another agent posts on the server: the desktop counts it (N3).
            server.run("post", "1", "--as", BOB, "--internal", "Are you there, Ann?")
            _until(lambda: _state(state).get("title") == "(1) Deskbell", "counted", log)

            # The server goes: the quiet indicator; the window goes on.
            serving.send_signal(signal.SIGTERM)
            serving.wait(timeout=DEADLINE_S)
            _until(lambda: "Offline" in str(_state(state).get("connection")), "offline", log)
            assert app.poll() is None
            # Meanwhile Bob posts again (straight into the server's workspace).
            server.run("post", "1", "--as", BOB, "--internal", "Printer still smokes")

            # Back: it arrives once; the count says two, and stays two.
            serving = _serve(server, port)
            _until(lambda: _state(state).get("title") == "(2) Deskbell", "caught up", log)
            _until(lambda: _state(state).get("connection") == "Connection: online", "back", log)
            # The server emails Ann about what she has not seen; the desktop sends nothing.
            _until(lambda: smtp_server.handler.messages, "emailed by the server", log)
            assert any(ANN in str(m["To"]) for m in smtp_server.handler.messages)
            time.sleep(3)  # a quiet while: an email the desktop would send comes in it
            assert _state(state)["total"] == 2
            assert trap.handler.connections == 0 and not trap.handler.messages
            assert app.poll() is None
        finally:
            app.terminate()
            try:
                app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()


def test_t5_a_first_start_with_the_server_away_says_so_in_one_line(tmp_path: Path) -> None:
    """T5: a new replica is empty until the server's snapshot; with the server unreachable
    the app says why in one line and exits (it ended in a traceback before)."""
    desk = tmp_path / "desk"
    account = TeamAccount(
        server_url=f"http://127.0.0.1:{free_port()}",
        email=ANN,
        person_id=1,
        name="Ann Agent",
        pin_sha256=None,
    )
    AccountStore(desk, secrets=SecretStore()).save(account, "a token")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(desk), "--quit-after-shown"],
        cwd=ROOT,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("deskbell: error:")]
    assert len(errors) == 1 and "cannot reach the server" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
