"""Which workspace a command runs on (T6), without a server: local mode is unchanged (`--as`
is still required where it was, with the same line), a saved login sends commands to its
server unless a database URL is given, and a damaged saved login is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import cli
from app.cli_remote import LOGIN_FILE
from tests.unit.app.test_cli_hostile import _run as run_cli

ANN = "ann@example.com"


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (("post", "1", "--internal", "hello"), "deskbell post"),
        (("seen", "1"), "deskbell seen"),
        (("mail", "clear-bounces", ANN), "deskbell mail clear-bounces"),
    ],
)
def test_t6_locally_who_acts_is_still_required_with_the_same_line(
    argv: tuple[str, ...],
    prog: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = run_cli(capsys, monkeypatch, ["--data-dir", str(tmp_path), *argv])
    assert (code, out) == (1, "")
    assert (
        err == f"deskbell: error: the following arguments are required: --as; see {prog} --help\n"
    )
    assert not (tmp_path / "deskbell.db").exists()  # refused before anything was opened


def test_t6_a_saved_login_sends_commands_to_its_server_unless_a_database_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9"  # never signed in there: no token in the keyring
    (tmp_path / LOGIN_FILE).write_text(json.dumps({"url": url, "email": ANN, "cafile": None}))
    code, out, err = run_cli(capsys, monkeypatch, ["--data-dir", str(tmp_path), "person", "list"])
    assert (code, out) == (1, "")
    assert err == f"deskbell: error: not signed in to {url}: run 'deskbell login {url}'\n"
    database = f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"
    argv = ["--data-dir", str(tmp_path), "--database-url", database, "person", "list"]
    code, out, err = run_cli(capsys, monkeypatch, argv)
    assert code == 0, err
    argv = ["--server", url, "--database-url", database, "person", "list"]
    code, _, err = run_cli(capsys, monkeypatch, argv)
    assert (code, err) == (1, "deskbell: error: give either --server or --database-url, not both\n")


def test_t6_a_damaged_saved_login_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / LOGIN_FILE).write_text("{not json")
    code, out, err = run_cli(capsys, monkeypatch, ["--data-dir", str(tmp_path), "person", "list"])
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert "cannot read the saved login" in line and "deskbell login URL" in line


def test_t6_logout_without_a_login_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(capsys, monkeypatch, ["--data-dir", str(tmp_path), "logout"])
    assert (code, out, err) == (1, "", "deskbell: error: not signed in to a server\n")


def test_t1_serve_listens_on_a_port_the_system_picks() -> None:
    args = cli._build_parser().parse_args(["serve", "--listen", "127.0.0.1:0"])
    assert args.listen == "127.0.0.1:0"
