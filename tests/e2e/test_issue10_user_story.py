"""Issue 10's whole user story, end to end, through the command line only (T1, T4, T6, E1,
E2, E4, I1-I3): real processes on loopback, `deskbell serve --listen --smtp-listen` on a
SQLite data folder, its SMTP settings pointing at aiosmtpd, and each person's `deskbell` with
a data folder and a file keyring of their own.

The administrator creates two agents and sets their passwords; both sign in. Bob follows the
server's event stream (`deskbell events --json`); Ann creates an item both follow and posts an
internal message; Bob's stream prints it. Bob does not mark it seen, so once the unseen delay
has passed he is emailed about it, once; his reply by email, sent to serve's own SMTP
listener, lands in the conversation Ann reads.
"""

from __future__ import annotations

import json
import queue
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path
from typing import IO, Any

import pytest

from tests.e2e.conftest import ROOT, Deskbell, wait_until
from tests.e2e.test_cli_remote import PW, _start
from tests.support.smtpd import SmtpServer, free_port

ADMIN = "admin@example.com"
ANN = "ann@example.com"
BOB = "bob@example.com"
OUR = "support@deskbell.test"
POSTED = "Can you take the printer ticket? It smokes again."
REPLIED = "Yes, I am on my way with an extinguisher."
# Every wait below is on something happening, with a deadline for a machine ten times slower.
DEADLINE_S = 90.0


@dataclass
class Stream:
    """`deskbell events` as a running process: its stdout lines as they come."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    stderr: Path
    pump: threading.Thread

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE_S)
        self.pump.join(timeout=DEADLINE_S)  # it ends at the end of the output
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def next_line(self, timeout_s: float = DEADLINE_S) -> str:
        try:
            return self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(
                f"no line within {timeout_s} s; stderr: {self.stderr.read_text()!r}"
            ) from None

    def next_event(self, wanted: str) -> dict[str, Any]:
        """The next event of type `wanted`, skipping others (items, follows...)."""
        while True:
            event: dict[str, Any] = json.loads(self.next_line())
            if event["type"] == wanted:
                return event


def _pump(out: IO[str], lines: queue.Queue[str]) -> None:
    for line in out:
        lines.put(line)


def _follow(person: Deskbell, *args: str) -> Stream:
    stderr = person.data_dir / f"events-{len(list(person.data_dir.glob('events-*')))}.err"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "events", *args],
            cwd=ROOT,
            env=person.environment(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    return Stream(proc=proc, lines=lines, stderr=stderr, pump=pump)


def _person(root: Path, name: str) -> Deskbell:
    """A person's own `deskbell`: data folder and file keyring (a token is kept per server)."""
    person = Deskbell(data_dir=root / name, env={"XDG_DATA_HOME": str(root / f"{name}-keyring")})
    person.data_dir.mkdir()
    return person


def _text(mail: Message) -> str:
    assert isinstance(mail, EmailMessage)
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _about(catcher: SmtpServer, to: str, text: str) -> list[EmailMessage]:
    """What the catcher accepted for `to` that carries `text` (not the welcome email)."""
    return [
        m
        for m in list(catcher.handler.messages)
        if isinstance(m, EmailMessage) and to in str(m["To"]) and text in _text(m)
    ]


def _reply(original: EmailMessage, *, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Bob Agent <{BOB}>"
    msg["To"] = str(original["Reply-To"] or original["From"])
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["Message-ID"] = make_msgid(domain="bob.example.com")
    msg["In-Reply-To"] = str(original["Message-ID"])
    msg["References"] = str(original["Message-ID"])
    msg.set_content(f"{body}\n\nOn a day, Deskbell wrote:\n> {POSTED}\n")
    return msg.as_bytes()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Deskbell]:
    served = Deskbell(data_dir=tmp_path / "server")
    served.data_dir.mkdir()
    try:
        yield served
    finally:
        served.stop_all()


def test_t1_t4_t6_e1_e2_i2_i3_the_whole_user_story_through_the_command_line(
    tmp_path: Path, server: Deskbell, smtp_server: SmtpServer
) -> None:
    # The administrator's account is set up on the server's data folder before it starts.
    server.run("user", "add", ADMIN, "--name", "Ada Admin", "--admin")
    server.run("user", "password", ADMIN, stdin=PW + "\n")
    mail_port = free_port()
    url = _start(server, "--smtp-listen", f"127.0.0.1:{mail_port}")

    admin, ann, bob = (_person(tmp_path, name) for name in ("admin", "ann", "bob"))
    admin.run("login", url, "--email", ADMIN, stdin=PW + "\n")
    for key, value in {
        "smtp.host": "127.0.0.1",
        "smtp.port": str(smtp_server.port),
        "smtp.security": "none",
        "smtp.from": OUR,
        "unseen_delay_s": "2",
    }.items():
        admin.run("--server", url, "config", "set", key, value)
    # T4: the administrator creates the two agents and sets their passwords.
    for email, name in ((ANN, "Ann Agent"), (BOB, "Bob Agent")):
        admin.run("--server", url, "user", "add", email, "--name", name)
        admin.run("--server", url, "user", "password", email, stdin=PW + "\n")
    for person, email in ((ann, ANN), (bob, BOB)):
        said = person.run("login", url, "--email", email, stdin=PW + "\n").stdout.strip()
        assert said == f"signed in to {url} as {email} (an agent); commands now run on that server"

    # T1: Bob follows the event stream; it has caught up once it says "ready".
    stream = _follow(bob, "--json")
    try:
        assert stream.next_event("ready")["position"] >= 0
        number = ann.out("item", "add", "Printer on fire", "--follower", ANN, "--follower", BOB)
        message_id = int(ann.out("post", number, "--internal", POSTED))
        event = stream.next_event("message")
        assert event["action"] == "posted"
        assert event["item_number"] == int(number)
        assert event["message"]["id"] == message_id
        assert event["message"]["text"] == POSTED
        assert event["message"]["author"]["email"] == ANN

        # E1: Bob does not mark it seen, so after the delay he is emailed about it.
        assert wait_until(lambda: _about(smtp_server, BOB, POSTED), timeout_s=DEADLINE_S), (
            server.serve_log()
        )
        [emailed] = _about(smtp_server, BOB, POSTED)
        assert emailed["Subject"] == f"[#{number}] Printer on fire"  # E4

        # I2, I3: Bob's reply by email lands in the internal conversation Ann reads.
        with smtplib.SMTP("127.0.0.1", mail_port, timeout=30) as client:
            client.sendmail(BOB, [str(emailed["Reply-To"] or OUR)], _reply(emailed, body=REPLIED))

        def replies() -> list[dict[str, Any]]:
            shown = json.loads(ann.out("item", "show", number, "--json"))
            return [m for m in shown["messages"] if m["author"] == BOB]

        assert wait_until(lambda: bool(replies()), timeout_s=DEADLINE_S, step_s=0.5), (
            server.serve_log()
        )
        [reply] = replies()
        assert reply["conversation"] == "internal"
        assert reply["text"].startswith(REPLIED)
        assert POSTED not in reply["text"]  # the quoted history is stripped (I4)
        # Bob's stream shows his own reply too, as every change he may see.
        while (event := stream.next_event("message"))["message"]["id"] != reply["id"]:
            pass
        assert event["message"]["author"]["email"] == BOB

        # E2: one email to Bob. Ann, who has not seen his reply, is emailed about it after
        # the same delay, so by then a second email to Bob would have gone out too.
        assert wait_until(lambda: _about(smtp_server, ANN, REPLIED), timeout_s=DEADLINE_S)
        assert len(_about(smtp_server, BOB, POSTED)) == 1
        assert _about(smtp_server, BOB, REPLIED) == []  # his own reply is not emailed to him

        # Ctrl+C ends the stream quietly.
        stream.proc.send_signal(signal.SIGINT)
        assert stream.proc.wait(timeout=DEADLINE_S) == 130
        assert stream.stderr.read_text() == ""
    finally:
        stream.close()

    # --count: a script takes K events and goes on (here, the first one of the feed).
    done = ann.run("events", "--after", "0", "--count", "1")
    assert len(done.stdout.splitlines()) == 1 and done.stderr == ""

    # A session that ends (Bob signs out elsewhere) ends the stream: one line, exit 1.
    again = _follow(bob)
    try:
        assert again.next_line().split()[1] == "ready"
        bob.run("--server", url, "logout")
        assert again.proc.wait(timeout=DEADLINE_S) == 1
        assert again.stderr.read_text() == (
            f"deskbell: error: the session has ended: sign in again (run 'deskbell login {url}')\n"
        )
    finally:
        again.close()
