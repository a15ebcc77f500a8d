"""Storage faults against the real `deskbell` processes (D8, issue 8 items 9 and 10).

The command line prints one line and exits 1, changes nothing and works again once the cause
is gone; `deskbell serve` keeps running, logs one line per change of state (per task) and goes
on once the cause is gone. A lock held by another program is never taken for damage.
"""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import SmtpServer, free_port
from tests.support.storage import (
    as_unprivileged,
    damage_page,
    fill_disk,
    held_lock,
    mounted_tmpfs,
    page_of,
)

ANN = "ann@example.com"
BOB = "bob@example.com"
DB = "deskbell.db"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two people, an item and a post, by the real command line, once a module (four processes
    that each test would otherwise start again); `_seed` gives a test its own copy."""
    cli = Deskbell(data_dir=tmp_path_factory.mktemp("storage-faults") / "data")
    cli.out("person", "add", ANN, "--name", "Ann Agent")
    cli.out("person", "add", BOB, "--name", "Bob Agent")
    cli.out("item", "add", "Printer on fire", "--follower", ANN, "--follower", BOB)
    cli.out("post", "1", "--as", ANN, "--internal", "kept")
    return cli.data_dir


def _seed(cli: Deskbell, seeded: Path) -> None:
    shutil.copytree(seeded, cli.data_dir, dirs_exist_ok=True)


def _one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 1, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("deskbell: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    assert done.stdout == ""
    return lines[0]


def _texts(cli: Deskbell) -> list[str]:
    return [m["text"] for m in cli.json("item", "show", "1", "--json")["messages"]]


def _aside(cli: Deskbell) -> list[Path]:
    return sorted(cli.data_dir.glob(f"{DB}.corrupt-*"))


@pytest.mark.slow
def test_d8_cli_on_a_database_locked_by_another_program_says_so_and_moves_nothing(
    deskbell: Deskbell, seeded: Path
) -> None:
    _seed(deskbell, seeded)
    with held_lock(deskbell.data_dir / DB):
        line = _one_error_line(deskbell.run("person", "list", check=False), "locked")
        assert "damaged" not in line
        _one_error_line(deskbell.run("post", "1", "--as", ANN, "--internal", "x", check=False))
    assert _aside(deskbell) == []
    assert _texts(deskbell) == ["kept"]


def test_d8_cli_on_a_read_only_database_refuses_writes_in_one_line_then_recovers(
    deskbell: Deskbell, seeded: Path
) -> None:
    _seed(deskbell, seeded)
    db = deskbell.data_dir / DB
    unprivileged = as_unprivileged()
    db.chmod(0o444)
    try:
        done = deskbell.run(
            "post", "1", "--as", ANN, "--internal", "refused", check=False, prefix=unprivileged
        )
        _one_error_line(done, "cannot be written", str(db))
        listed = deskbell.run("person", "list", prefix=unprivileged)  # reading still works
        assert ANN in listed.stdout
    finally:
        db.chmod(0o644)
    deskbell.run("post", "1", "--as", ANN, "--internal", "after", prefix=unprivileged)
    assert _texts(deskbell) == ["kept", "after"]


def test_d8_cli_in_a_read_only_folder_is_one_line_then_recovers(
    deskbell: Deskbell, seeded: Path
) -> None:
    _seed(deskbell, seeded)
    unprivileged = as_unprivileged()
    deskbell.data_dir.chmod(0o555)
    try:
        done = deskbell.run(
            "post", "1", "--as", ANN, "--internal", "refused", check=False, prefix=unprivileged
        )
        _one_error_line(done)
    finally:
        deskbell.data_dir.chmod(0o755)
    deskbell.run("post", "1", "--as", ANN, "--internal", "after", prefix=unprivileged)
    assert _texts(deskbell) == ["kept", "after"]
    assert _aside(deskbell) == []


def test_d8_cli_on_a_full_disk_is_one_line_then_recovers(tmp_path: Path, seeded: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", size_kib=8192) as disk:
        cli = Deskbell(data_dir=disk / "data")
        _seed(cli, seeded)
        filler = fill_disk(disk)
        _one_error_line(
            cli.run("post", "1", "--as", ANN, "--internal", "y" * 50_000, check=False), "full"
        )
        filler.unlink()
        cli.run("post", "1", "--as", ANN, "--internal", "after")
        assert _texts(cli) == ["kept", "after"]


def test_d8_cli_on_a_damaged_page_keeps_the_file_and_says_where(
    deskbell: Deskbell, seeded: Path
) -> None:
    _seed(deskbell, seeded)
    db = deskbell.data_dir / DB
    damage_page(db, page_of(db, "messages", kind="leaf"))
    done = deskbell.run("person", "list")
    [notice] = done.stderr.splitlines()
    [aside] = _aside(deskbell)
    assert str(aside) in notice
    assert "Traceback" not in done.stderr
    deskbell.run("person", "add", "new@example.com", "--name", "New")  # a fresh start works
    rescued = deskbell.out("rescue", str(aside))  # the notice's recipe
    assert "unreadable parts in messages" in rescued
    assert deskbell.json("item", "show", "1", "--json")["title"] == "Printer on fire"
    assert [p["email"] for p in deskbell.json("person", "list", "--json")] == [ANN, BOB]


def test_d8_cli_and_serve_survive_invalid_utf8_inside_a_template_row(
    deskbell: Deskbell, smtp_server: SmtpServer, seeded: Path
) -> None:
    _seed(deskbell, seeded)
    deskbell.out("config", "set", "smtp.host", "127.0.0.1")
    deskbell.out("config", "set", "smtp.port", str(smtp_server.port))
    deskbell.out("config", "set", "smtp.security", "none")
    deskbell.out("config", "set", "unseen_delay_s", "1")
    with contextlib.closing(sqlite3.connect(deskbell.data_dir / DB)) as conn:
        conn.execute(
            "UPDATE email_templates SET body_text = CAST(X'ff207b7b206974656d2e7469746c65207d7d'"
            " AS TEXT) WHERE name = 'new_message'"
        )
        conn.commit()
    assert "\ufffd" in deskbell.out("template", "show", "new_message")
    deskbell.out("post", "1", "--as", ANN, "--internal", "for Bob")
    deskbell.serve()
    assert wait_until(lambda: len(smtp_server.handler.messages) >= 1, timeout_s=60), (
        deskbell.serve_log()
    )
    assert "Traceback" not in deskbell.serve_log()


@pytest.mark.slow
def test_d8_serve_waits_for_a_locked_database_then_runs(
    deskbell: Deskbell, smtp_server: SmtpServer, seeded: Path
) -> None:
    _seed(deskbell, seeded)
    with held_lock(deskbell.data_dir / DB):
        serve = deskbell.serve()
        assert wait_until(lambda: "locked" in deskbell.serve_log(), timeout_s=120), (
            deskbell.serve_log()
        )
        assert serve.poll() is None
    assert wait_until(lambda: "running" in deskbell.serve_log(), timeout_s=120), (
        deskbell.serve_log()
    )
    log = deskbell.serve_log()
    assert "Traceback" not in log
    assert sum("locked" in line for line in log.splitlines()) == 1
    assert "opening the database works again" in log
    assert _aside(deskbell) == []


STRANGER_MAIL = (
    "From: Dee <dee@stranger.org>\r\nTo: support@deskbell.test\r\n"
    "Subject: Our printer\r\nMessage-ID: <dee-1@stranger.org>\r\n\r\nIt smokes.\r\n"
)


@pytest.mark.slow
def test_d8_serve_rides_out_a_lock_taken_while_it_runs(deskbell: Deskbell, seeded: Path) -> None:
    """Another program holds a write transaction while mail arrives: the sender is told to
    come back (451), serve logs one line and keeps running, and the mail lands afterwards."""
    _seed(deskbell, seeded)
    port = free_port()
    serve = deskbell.serve("--smtp-listen", f"127.0.0.1:{port}")
    assert wait_until(lambda: "running" in deskbell.serve_log(), timeout_s=60), deskbell.serve_log()

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            client.sendmail("dee@stranger.org", ["support@deskbell.test"], STRANGER_MAIL)

    with held_lock(deskbell.data_dir / DB, locking_mode="NORMAL", begin="IMMEDIATE"):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send()
        assert refused.value.smtp_code == 451
        with pytest.raises(smtplib.SMTPDataError):
            send()  # the sender retries: still locked, still one kind of line
    send()
    assert serve.poll() is None
    assert "Our printer" in deskbell.out("item", "show", "2")
    log = deskbell.serve_log()
    assert "Traceback" not in log
    refused_lines = [
        line for line in log.splitlines() if "mail over SMTP could not be stored" in line
    ]
    assert len(refused_lines) == 2 and all("locked" in line for line in refused_lines), log
    # (Background work that met the lock, such as the upkeep's first purge, says so on its own
    # line and retries: that is not a refused mail.)
    assert _aside(deskbell) == []


def test_d8_serve_waits_out_a_full_disk_at_start_then_runs(
    tmp_path: Path, smtp_server: SmtpServer, seeded: Path
) -> None:
    with mounted_tmpfs(tmp_path / "disk", size_kib=8192) as disk:
        cli = Deskbell(data_dir=disk / "data", log_dir=tmp_path)
        try:
            _seed(cli, seeded)
            filler = fill_disk(disk)
            serve = cli.serve()
            assert wait_until(lambda: "full" in cli.serve_log(), timeout_s=60), cli.serve_log()
            assert serve.poll() is None
            filler.unlink()
            assert wait_until(lambda: "running" in cli.serve_log(), timeout_s=120), cli.serve_log()
            log = cli.serve_log()
            assert "Traceback" not in log
            assert sum("full" in line for line in log.splitlines()) == 1
        finally:
            cli.stop_all()
        assert _texts(cli) == ["kept"]
