"""E7, T2 with real `deskbell serve` processes against a real, slow aiosmtpd.

The server's slowness is in the test's hands (a handler that holds a reply until released),
so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.store.db import DB_FILENAME
from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import CatcherHandler, SmtpServer

AUTHOR = "lead@example.com"
USERS = [f"agent{i}@example.com" for i in range(5)]


def _mid(value: object) -> str:
    return str(value).strip().strip("<>")


def _setup(deskbell: Deskbell, port: int, users: list[str], *, lease_s: int = 120) -> int:
    deskbell.out("person", "add", AUTHOR, "--name", "Lead")
    for user in users:
        deskbell.out("person", "add", user, "--name", user.split("@")[0])
    number = int(deskbell.out("item", "add", "Outage", *[f"--follower={u}" for u in users]))
    for key, value in (
        ("smtp.host", "127.0.0.1"),
        ("smtp.port", str(port)),
        ("smtp.security", "none"),
        ("unseen_delay_s", "1"),
        ("outbox.lease_s", str(lease_s)),
    ):
        deskbell.out("config", "set", key, value)
    return number


def _sent_ids(deskbell: Deskbell) -> dict[str, str]:
    return {
        _mid(e["message_id"]): e["status"]
        for e in deskbell.json("emails", "--json")
        if e["kind"] == "notification"
    }


@dataclass
class HoldFirstData(CatcherHandler):
    """Holds its answer to the first message's final "." until the test releases it."""

    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.held.is_set():
            self.held.set()
            await asyncio.to_thread(self.release.wait, 120)
        return await super().handle_DATA(server, session, envelope)


def test_e7_t2_an_email_in_flight_is_never_taken_over_by_a_second_sender(
    deskbell: Deskbell,
) -> None:
    """Two senders, a server that keeps the first email for as long as the test likes: the
    second sender takes the rest of the batch once its claims run out, never the email in
    flight, and the first sends none of those it lost. Every email arrives exactly once."""
    handler = HoldFirstData()
    with SmtpServer(handler=handler) as server:
        number = _setup(deskbell, server.port, USERS, lease_s=2)
        deskbell.out("post", str(number), "--as", AUTHOR, "--internal", "Outage, all hands")
        first = deskbell.serve()
        assert handler.held.wait(60), deskbell.serve_log()
        second = deskbell.serve()  # takes over whatever the first no longer holds
        # All but two: the one in flight, and the next, whose claim the first sender already
        # extended (it rides on the commit before it).
        assert wait_until(lambda: len(handler.messages) >= len(USERS) - 2, timeout_s=60), (
            deskbell.serve_log(0) + deskbell.serve_log(1)
        )
        handler.release.set()
        assert wait_until(lambda: set(_sent_ids(deskbell).values()) == {"sent"}, timeout_s=60), (
            _sent_ids(deskbell)
        )
        for proc in (first, second):
            proc.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0

    received = Counter(_mid(m["Message-ID"]) for m in handler.messages)
    assert set(received) == set(_sent_ids(deskbell))
    assert len(received) == len(USERS)
    assert all(n == 1 for n in received.values()), received


@dataclass
class LockOnAccept(CatcherHandler):
    """Accepts the first message while another program holds the database's write lock, so
    the sender's record of that acceptance is still in flight when the test stops it."""

    db: str = ""
    accepted: threading.Event = field(default_factory=threading.Event)
    locker: sqlite3.Connection | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.accepted.is_set():
            self.locker = sqlite3.connect(self.db, check_same_thread=False, isolation_level=None)
            self.locker.execute("BEGIN IMMEDIATE")
            self.accepted.set()
        return await super().handle_DATA(server, session, envelope)


def test_e7_sigterm_while_an_acceptance_is_being_recorded_still_records_it(
    deskbell: Deskbell,
) -> None:
    handler = LockOnAccept(db=str(deskbell.data_dir / DB_FILENAME))
    with SmtpServer(handler=handler) as server:
        number = _setup(deskbell, server.port, USERS[:1])
        deskbell.out("post", str(number), "--as", AUTHOR, "--internal", "first")
        serve = deskbell.serve()
        assert handler.accepted.wait(60), deskbell.serve_log()
        serve.send_signal(signal.SIGTERM)  # the 250 is on its way; the record cannot commit
        assert wait_until(lambda: "stopping" in deskbell.serve_log(), timeout_s=30)
        assert handler.locker is not None
        handler.locker.execute("ROLLBACK")  # the other program lets go
        handler.locker.close()
        assert serve.wait(timeout=60) == 0, deskbell.serve_log()
        [(first_id, status)] = _sent_ids(deskbell).items()
        assert status == "sent"

        # Started again, the service does not send it again: a later email arrives alone.
        again = deskbell.serve()
        deskbell.out("post", str(number), "--as", AUTHOR, "--internal", "second")
        assert wait_until(lambda: len(handler.messages) >= 2, timeout_s=60), deskbell.serve_log()
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=60) == 0

    received = Counter(_mid(m["Message-ID"]) for m in handler.messages)
    assert received[first_id] == 1, received
    assert len(received) == 2
