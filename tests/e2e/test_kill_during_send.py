"""E7 with a real crash: `deskbell serve` is SIGKILLed while the server holds an email's DATA,
then restarted; every email arrives exactly once, the interrupted one with its Message-ID."""

from __future__ import annotations

import email
import email.policy
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import CatcherHandler, SmtpServer

USERS = [f"agent{i}@example.com" for i in range(4)]
AUTHOR = "lead@example.com"


@dataclass
class _DataWatcher(CatcherHandler):
    """Notes the Message-ID of every DATA the server receives, accepted or not."""

    data_ids: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self.data_ids.append(_mid(parsed["Message-ID"]))
        return await super().handle_DATA(server, session, envelope)


def _mid(value: object) -> str:
    return str(value).strip().strip("<>")


def test_e7_t2_serve_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    deskbell: Deskbell,
) -> None:
    handler = _DataWatcher(delay_data_s=2.0, accept_only_if_connected=True)
    with SmtpServer(handler=handler) as server:
        deskbell.out("person", "add", AUTHOR, "--name", "Lead")
        for user in USERS:
            deskbell.out("person", "add", user, "--name", user.split("@")[0])
        number = int(deskbell.out("item", "add", "Outage", *[f"--follower={u}" for u in USERS]))
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(server.port)),
            ("smtp.security", "none"),
            ("unseen_delay_s", "1"),
            ("outbox.lease_s", "2"),
        ):
            deskbell.out("config", "set", key, value)
        # One internal message: four recipients, four emails (one per recipient, E2).
        deskbell.out("post", str(number), "--as", AUTHOR, "--internal", "Outage, all hands")
        time.sleep(1.1)  # due before serve starts, so they are all queued at once

        first = deskbell.serve()
        assert wait_until(lambda: len(handler.data_ids) >= 1, timeout_s=20), deskbell.serve_log()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        interrupted = handler.data_ids[0]
        time.sleep(2.2)  # the server finishes its slow DATA, sees the client gone: not accepted
        assert handler.messages == []

        queued = deskbell.json("emails", "--json")
        queued_ids = {_mid(e["message_id"]) for e in queued if e["kind"] == "notification"}
        assert len(queued_ids) == len(USERS)
        assert interrupted in queued_ids
        assert any(e["status"] == "sending" for e in queued)  # the dead process's claim

        handler.delay_data_s = 0.2
        second = deskbell.serve()
        assert wait_until(lambda: len(handler.messages) >= len(USERS), timeout_s=30), (
            deskbell.serve_log()
        )
        time.sleep(1.0)  # anything sent twice would show up now
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0

    received = Counter(_mid(m["Message-ID"]) for m in handler.messages)
    assert set(received) == queued_ids  # nothing lost
    assert all(n == 1 for n in received.values()), received  # nothing accepted twice
    assert received[interrupted] == 1  # resent with the same Message-ID
    final = deskbell.json("emails", "--json")
    assert {e["status"] for e in final if e["kind"] == "notification"} == {"sent"}
