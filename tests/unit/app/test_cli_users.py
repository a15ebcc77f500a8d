"""`deskbell user add|password|sessions|end-session` (T4, M5, M8), on SQLite and PostgreSQL.

The command line acts as the machine's operator: it adds users, sets passwords and ends
sessions as an administrator would through the server. Bad input is one line, exit 1, and
changes nothing; a password typed at a terminal is asked twice and never echoed.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from app import cli
from services.api import AuthenticationError, Service
from tests.support.world import open_service

T = TypeVar("T")
ANN, BOB = "ann@example.com", "bob@example.com"
PW = "correct horse battery"


class Cli:
    def __init__(
        self, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.url = url
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def run(self, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        import io

        self.monkeypatch.setattr(
            sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
        )
        self.capsys.readouterr()
        code = cli.main(["--database-url", self.url, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str, stdin: bytes = b"") -> str:
        code, out, err = self.run(*args, stdin=stdin)
        assert code == 0, err
        return out

    def refused(self, *args: str, stdin: bytes = b"") -> str:
        code, out, err = self.run(*args, stdin=stdin)
        lines = err.splitlines()
        assert code == 1 and out == "", (code, out, err)
        assert len(lines) == 1 and lines[0].startswith("deskbell: error: "), err
        return lines[0]

    def service(self, work: Callable[[Service], Awaitable[T]]) -> T:
        async def go() -> T:
            svc = await open_service(self.url)
            try:
                return await work(svc)
            finally:
                await svc.close()

        return asyncio.run(go())


@pytest.fixture
def users(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    c = Cli(database_url, capsys, monkeypatch)
    assert "as administrator" in c.ok("user", "add", ANN, "--name", "Ann Agent")
    assert "as agent" in c.ok("user", "add", BOB, "--name", "Bob Agent")
    return c


def _sign_in(svc: Service, email: str, password: str = PW) -> Awaitable[Any]:
    return svc.sign_in(email=email, password=password, device="laptop", address="192.0.2.1")


def test_t4_m8_user_add_makes_agents_and_admins_and_the_welcome_invites(users: Cli) -> None:
    out = users.ok("user", "add", "dan@example.com", "--name", "Dan")
    assert "welcome email is off" in out and "deskbell user password dan@example.com" in out
    users.ok("system-email", "enable", "welcome")
    out = users.ok("user", "add", "eve@example.com", "--name", "Eve", "--admin")
    assert "as administrator" in out and "invites them to set a password" in out
    people = {p["email"]: p for p in json.loads(users.ok("person", "list", "--json"))}
    assert [people[e]["admin"] for e in (ANN, BOB, "dan@example.com", "eve@example.com")] == [
        True,
        False,
        False,
        True,
    ]
    assert {p["kind"] for p in people.values()} == {"user"}
    [email] = json.loads(users.ok("emails", "--json"))
    assert email["to"] == ["eve@example.com"] and email["kind"] == "system"
    assert "already exists" in users.refused("user", "add", BOB, "--name", "Bob again")


def test_t4_m8_user_password_from_standard_input(users: Cli) -> None:
    out = users.ok("user", "password", BOB, stdin=PW.encode() + b"\n")
    assert out == f"password set for {BOB}; 0 session(s) ended\n"
    new = users.service(lambda svc: _sign_in(svc, BOB))
    assert new.who.email == BOB
    out = users.ok("user", "password", BOB, stdin=b"another long secret\n")
    assert "1 session(s) ended" in out
    with pytest.raises(AuthenticationError):
        users.service(lambda svc: svc.authenticate(new.token))


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        (b"", "too short"),
        (b"short\n", "too short"),
        (b"bob@example.com\n", "email"),
        (b"escape \x1b[31m red\n", "control characters"),
        (b"nul \x00 in the middle\n", "control characters"),
        (b"x" * 2_000_000 + b"\n", "too long"),
        (b"caf\xe9 au lait et sucre\n", "not UTF-8"),
    ],
)
def test_t4_m8_a_refused_password_is_one_line_and_changes_nothing(
    users: Cli, stdin: bytes, says: str
) -> None:
    users.ok("user", "password", BOB, stdin=PW.encode() + b"\n")
    line = users.refused("user", "password", BOB, stdin=stdin)
    assert says in line and len(line) < 300
    users.service(lambda svc: _sign_in(svc, BOB))  # the old password still works


def test_t4_m8_user_password_refuses_customers_and_unknown_addresses(users: Cli) -> None:
    users.ok("person", "add", "carl@customer.org", "--name", "Carl", "--customer")
    assert "customer" in users.refused("user", "password", "carl@customer.org", stdin=b"x" * 12)
    assert "no person" in users.refused("user", "password", "x@example.com", stdin=b"x" * 12)


def test_t4_m8_user_sessions_and_end_session(users: Cli) -> None:
    users.ok("user", "password", BOB, stdin=PW.encode() + b"\n")
    first = users.service(lambda svc: _sign_in(svc, BOB))
    second = users.service(lambda svc: _sign_in(svc, BOB))
    listed = json.loads(users.ok("user", "sessions", BOB, "--json"))
    assert [s["id"] for s in listed] == [first.who.session_id, second.who.session_id]
    assert listed[0]["device"] == "laptop" and listed[0]["address"] == "192.0.2.1"
    text = users.ok("user", "sessions", BOB)
    assert text.startswith(f"{first.who.session_id}\tlaptop\t192.0.2.1\tsigned in ")
    out = users.ok("user", "end-session", str(first.who.session_id))
    assert out == f"session {first.who.session_id} of {BOB} (laptop) ended\n"
    with pytest.raises(AuthenticationError):
        users.service(lambda svc: svc.authenticate(first.token))
    assert users.service(lambda svc: svc.authenticate(second.token)) == second.who
    assert [s["id"] for s in json.loads(users.ok("user", "sessions", BOB, "--json"))] == [
        second.who.session_id
    ]
    assert "no session" in users.refused("user", "end-session", "999999")
    assert users.ok("user", "sessions", ANN) == ""


# --- a password typed at a terminal ----------------------------------------------------------


def _terminal(argv: list[str], answers: list[str]) -> tuple[int, str]:
    """Run `deskbell` on a pseudo-terminal, answering each password prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: deskbell on the terminal
        os.execv(sys.executable, [sys.executable, "-m", "app.cli", *argv])
    seen = b""
    deadline = time.monotonic() + 120  # a shared, slow machine: generous, and never slept
    pending = list(answers)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        prompts = seen.count(b"New password:") + seen.count(b"Once more:")
        while pending and len(answers) - len(pending) < prompts:
            os.write(fd, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_t4_m8_user_password_at_a_terminal_asks_twice_without_echo(users: Cli) -> None:
    argv = ["--database-url", users.url, "user", "password", BOB]
    code, shown = _terminal(argv, [PW, PW])
    assert code == 0, shown
    assert "New password:" in shown and "Once more:" in shown
    assert PW not in shown and "password set for bob@example.com" in shown
    users.service(lambda svc: _sign_in(svc, BOB))
    code, shown = _terminal(argv, ["a brand new secret", "a brand new secreT"])
    assert code == 1 and "the two passwords differ" in shown
    users.service(lambda svc: _sign_in(svc, BOB))  # unchanged
