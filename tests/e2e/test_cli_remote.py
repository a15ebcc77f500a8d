"""The command line against a team server (T6), as processes: `deskbell serve --listen` on
loopback, `deskbell login URL` keeping the token in a file keyring, `logout`, `--server`, and
every command saying on the server exactly what it says locally.

The comparison runs each command twice from the same state: locally on a copy of the
server's database taken just before, and on the server through the saved login; the exit
status, standard output (with --json too) and the error line must be equal. A command whose
routes the server does not serve yet is skipped, its reason naming the missing routes.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from services.server.app import build_app
from tests.e2e.conftest import Deskbell, wait_until
from tests.unit.app.test_cli_hostile import (
    ANN,
    BASELINES,
    BOB,
    LEAVES,
    STDIN,
    Baseline,
    _argv,
    _run,
    _seed,
)

if TYPE_CHECKING:
    from services.api import Service

PW = "correct horse battery"
SERVING = re.compile(r"serving the API on (http://\S+)")

# The routes each command calls (API-CONTRACT.md), by method and path with {} for a value.
ROUTES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("person", "add"): ("POST /people",),
    ("person", "list"): ("GET /people",),
    ("item", "add"): ("POST /items",),
    ("item", "follow"): ("PUT /items/{}/followers/{}",),
    ("item", "unfollow"): ("DELETE /items/{}/followers/{}",),
    ("item", "show"): ("GET /items/{}", "GET /items/{}/messages"),
    ("item", "close"): ("GET /me", "POST /items/{}/close"),
    ("item", "status"): ("GET /me", "PUT /items/{}/status"),
    ("item", "assign"): ("PUT /items/{}/assignee",),
    ("post",): ("GET /me", "POST /items/{}/messages"),
    ("seen",): ("GET /me", "POST /items/{}/seen"),
    ("config", "set"): ("PUT /settings/{}",),
    ("config", "get"): ("GET /settings",),
    ("config", "list"): ("GET /settings",),
    ("smtp", "password"): ("PUT /smtp/password",),
    ("smtp", "test"): ("POST /smtp/test",),
    ("emails",): ("GET /emails",),
    ("automation", "list"): ("GET /automations",),
    ("automation", "show"): ("GET /automations/{}",),
    ("automation", "enable"): ("POST /automations/{}/enable",),
    ("automation", "disable"): ("POST /automations/{}/disable",),
    ("automation", "delete"): ("DELETE /automations/{}",),
    ("automation", "set-text"): ("PUT /automations/{}/text",),
    ("template", "list"): ("GET /templates",),
    ("template", "show"): ("GET /templates/{}",),
    ("template", "set"): ("PUT /templates/{}",),
    ("template", "preview"): ("POST /templates/{}/preview",),
    ("template", "test"): ("POST /templates/{}/test",),
    ("template", "delete"): ("DELETE /templates/{}",),
    ("system-email", "list"): ("GET /system-emails",),
    ("system-email", "enable"): ("POST /system-emails/{}/enable",),
    ("system-email", "disable"): ("POST /system-emails/{}/disable",),
    ("user", "reset-password"): ("POST /password-resets",),
    ("user", "settings"): (
        "GET /me",
        "GET /people/{}",
        "GET /people",
        "PUT /people/{}/notifications",
    ),
    ("user", "add"): ("POST /users",),
    ("user", "password"): ("GET /people/{}", "PUT /users/{}/password"),
    ("user", "sessions"): ("GET /users/{}/sessions",),
    ("user", "end-session"): ("DELETE /sessions/{}",),
    ("mail", "receive"): ("POST /mail",),
    ("mail", "bounces"): ("GET /bounces",),
    ("mail", "clear-bounces"): ("GET /me", "DELETE /bounces/{}"),
    ("imap", "password"): ("PUT /imap/password",),
    ("imap", "test"): ("POST /imap/test",),
}
LOCAL_ONLY = {("serve",), ("rescue",), ("login",), ("logout",)}
# Nothing to compare with locally: tests/e2e/test_issue10_user_story.py follows the stream.
SERVER_ONLY = {("events",)}
# The signed-in user (Ann) acts on the server, so she acts locally too.
ACTING_AS_ANN: dict[tuple[str, ...], Baseline] = {("seen",): {"email": ANN}}
MAIL = (
    b"From: Carl Customer <carl@customer.org>\r\nTo: help@example.com\r\n"
    b"Subject: The printer again\r\nMessage-ID: <remote-1@customer.org>\r\n\r\nIt smokes.\r\n"
)
MORE_STDIN = {("mail", "receive"): MAIL}
# What a server may keep to itself: its public reset route answers alike for every address.
NOT_TOLD = {("user", "reset-password"): f"a reset code is emailed to {BOB} if it has an account\n"}


def _shape(route: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", route)


def _served() -> set[str]:
    """The routes this branch's server has, as `METHOD /path` under /api/v1."""
    app = build_app(cast("Service", None))  # routes only: no call is made
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path") or ""
        if template.startswith("/api/v1/"):
            found.add(f"{route.method} {_shape(template.removeprefix('/api/v1'))}")
    return found


SERVED = _served()


@dataclass(frozen=True)
class Team:
    url: str
    server: Deskbell
    client_dir: Path
    files: dict[str, str]


def _start(server: Deskbell, *more: str) -> str:
    """Start `deskbell serve --listen` on a free port (with `more` arguments); its URL."""
    proc = server.serve("--listen", "127.0.0.1:0", *more)
    assert wait_until(
        lambda: SERVING.search(server.serve_log()) is not None or proc.poll() is not None,
        timeout_s=120,
    )
    found = SERVING.search(server.serve_log())
    assert found, server.serve_log()
    return found.group(1)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """A server on the hostile suite's workspace, Ann (an administrator) signed in to it."""
    root = tmp_path_factory.mktemp("team")
    template = root / "template.txt"
    template.write_text("Subject: Hi {{ recipient.name }}\n\nHello {{ recipient.name }}.\n")
    server = Deskbell(data_dir=root / "server")
    _seed(server.data_dir, template)
    server.run("user", "password", ANN, stdin=PW + "\n")
    try:
        url = _start(server)
        client = Deskbell(data_dir=root / "client")
        client.data_dir.mkdir()
        client.run("login", url, "--email", ANN, stdin=PW + "\n")
        files = {"TEMPLATE_FILE": str(template), "DAMAGED_FILE": str(template)}
        yield Team(url=url, server=server, client_dir=client.data_dir, files=files)
    finally:
        server.stop_all()


def _copy_database(source: Path, target: Path) -> None:
    target.mkdir()
    with (
        contextlib.closing(sqlite3.connect(source / "deskbell.db")) as src,
        contextlib.closing(sqlite3.connect(target / "deskbell.db")) as dst,
    ):
        src.backup(dst)


def test_t6_every_command_has_its_routes() -> None:
    assert set(ROUTES) | LOCAL_ONLY | SERVER_ONLY == set(LEAVES)


@pytest.mark.parametrize("command", sorted(ROUTES), ids=" ".join)
def test_t6_every_command_says_the_same_on_the_server_as_locally(
    command: tuple[str, ...],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = [r for r in ROUTES[command] if r not in SERVED]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} under /api/v1 (the REST routes, branch i10-api)")
    team: Team = request.getfixturevalue("team")
    local_dir = tmp_path / "local"
    _copy_database(team.server.data_dir, local_dir)
    argv = _argv(command, {**BASELINES[command], **ACTING_AS_ANN.get(command, {})}, team.files)
    stdin = MORE_STDIN.get(command, STDIN.get(command, b""))
    local = _run(capsys, monkeypatch, ["--data-dir", str(local_dir), *argv], stdin)
    remote = _run(capsys, monkeypatch, ["--data-dir", str(team.client_dir), *argv], stdin)
    if command in NOT_TOLD and remote != local:
        assert remote == (0, NOT_TOLD[command], "")
        return
    assert remote == local


# --- signing in and out, as processes ----------------------------------------------------


@pytest.fixture
def keyring_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file keyring of this test's own: the client processes inherit it."""
    folder = tmp_path / "keyring"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


@pytest.fixture
def served(tmp_path: Path, keyring_dir: Path) -> Iterator[tuple[Deskbell, str]]:
    server = Deskbell(data_dir=tmp_path / "server")
    server.data_dir.mkdir()
    server.run("user", "add", ANN, "--name", "Ann", "--admin")
    server.run("user", "add", BOB, "--name", "Bob")
    for email in (ANN, BOB):
        server.run("user", "password", email, stdin=PW + "\n")
    try:
        yield server, _start(server)
    finally:
        server.stop_all()


@pytest.fixture
def client(tmp_path: Path, keyring_dir: Path) -> Deskbell:
    cli = Deskbell(data_dir=tmp_path / "client")
    cli.data_dir.mkdir()
    return cli


def _token(url: str) -> str | None:
    """The token the client processes keep for `url`, read from the same file keyring."""
    from keyrings.alt.file import PlaintextKeyring

    return PlaintextKeyring().get_password("deskbell", f"server-token:{url}")


def _live_devices(server: Deskbell, email: str) -> list[str]:
    return [s["device"] for s in server.json("user", "sessions", email, "--json")]


def _one_line(done: object) -> str:
    assert getattr(done, "returncode", None) == 1, done
    lines = str(getattr(done, "stderr", "")).splitlines()
    assert len(lines) == 1 and lines[0].startswith("deskbell: error: "), lines
    assert getattr(done, "stdout", None) == "", done
    return lines[0]


def test_t6_login_keeps_the_token_in_the_keyring_and_logout_ends_the_session(
    served: tuple[Deskbell, str], client: Deskbell, keyring_dir: Path
) -> None:
    server, url = served
    said = client.run("login", url, "--email", ANN, stdin=PW + "\n").stdout.strip()
    assert said == (
        f"signed in to {url} as {ANN} (an administrator); commands now run on that server"
    )
    assert _live_devices(server, ANN) == [socket.gethostname()]
    saved = json.loads((client.data_dir / "server.json").read_text())
    assert saved == {"url": url, "email": ANN, "cafile": None}
    assert _token(url) is not None
    kept = "".join(p.read_text() for p in keyring_dir.rglob("*") if p.is_file())
    everything = kept + "".join(
        p.read_text(errors="replace") for p in client.data_dir.rglob("*") if p.is_file()
    )
    assert PW not in everything  # the password is never kept

    said = client.out("logout")
    assert said == f"signed out of {url}"
    assert _token(url) is None
    assert _live_devices(server, ANN) == []
    assert not (client.data_dir / "server.json").exists()
    line = _one_line(client.run("--server", url, "person", "list", check=False))
    assert line == f"deskbell: error: not signed in to {url}: run 'deskbell login {url}'"
    # Without a saved login, commands run on this machine's workspace again.
    assert client.run("person", "list").returncode == 0


def test_t6_logout_forgets_the_token_when_the_server_is_gone(
    served: tuple[Deskbell, str], client: Deskbell
) -> None:
    server, url = served
    client.run("login", url, "--email", BOB, stdin=PW + "\n")
    server.stop_all()
    said = client.out("logout")
    assert said.startswith(f"signed out of {url}; the server could not be told (cannot reach")
    assert not (client.data_dir / "server.json").exists()
    line = _one_line(client.run("--server", url, "person", "list", check=False))
    assert "not signed in" in line


def test_t6_a_wrong_password_is_one_line_and_keeps_nothing(
    served: tuple[Deskbell, str], client: Deskbell
) -> None:
    server, url = served
    line = _one_line(
        client.run("login", url, "--email", BOB, stdin="wrong password\n", check=False)
    )
    assert line.startswith("deskbell: error: ") and "password" in line
    assert not (client.data_dir / "server.json").exists()
    assert _live_devices(server, BOB) == []


def test_t6_on_the_server_the_signed_in_user_acts_and_no_one_else(
    served: tuple[Deskbell, str], client: Deskbell
) -> None:
    _, url = served
    client.run("login", url, "--email", BOB, stdin=PW + "\n")
    for argv in (
        ("post", "1", "--internal", "hello", "--as", ANN),
        ("seen", "1", "--as", ANN),
        ("item", "close", "1", "--as", ANN),
        ("mail", "clear-bounces", BOB, "--as", ANN),
    ):
        line = _one_line(client.run(*argv, check=False))
        assert line == (
            f"deskbell: error: you are signed in to {url} as {BOB}, so you act as yourself "
            f"there, not as '{ANN}'"
        ), argv


def test_t6_an_ended_session_says_to_sign_in_again(
    served: tuple[Deskbell, str], client: Deskbell
) -> None:
    server, url = served
    client.run("login", url, "--email", BOB, stdin=PW + "\n")
    [session] = server.json("user", "sessions", BOB, "--json")
    server.run("user", "end-session", str(session["id"]))
    line = _one_line(client.run("post", "1", "--internal", "hello", check=False))
    assert line.endswith(f"sign in again (run 'deskbell login {url}')"), line


def test_t6_a_server_that_is_not_running_is_one_clear_line(client: Deskbell) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        line = _one_line(client.run("login", url, "--email", BOB, stdin=PW + "\n", check=False))
    assert line == (
        f"deskbell: error: cannot reach the server at {url}: the connection was refused "
        "(is deskbell serve running there, on that port?)"
    )
