"""End to end: only the `deskbell` command line and a `deskbell serve` process, against a real
aiosmtpd on loopback (R1-R4, S3, E1, E4, T3, and the issue's --json keys)."""

from __future__ import annotations

import signal
import subprocess
import time
from email.message import Message
from email.utils import getaddresses

import pytest

from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import SmtpServer

ANN = "ann@example.com"
BOB = "bob@example.com"
CARL = "carl@customer.org"


def _set_up(cli: Deskbell, server: SmtpServer, *, delay_s: int) -> int:
    cli.out("person", "add", ANN, "--name", "Ann Agent")
    cli.out("person", "add", BOB, "--name", "Bob Agent")
    cli.out("person", "add", CARL, "--name", "Carl Customer", "--customer")
    number = int(
        cli.out(
            "item",
            "add",
            "Printer on fire",
            "--follower",
            ANN,
            "--follower",
            BOB,
            "--follower",
            CARL,
        )
    )
    cli.out("config", "set", "smtp.host", "127.0.0.1")
    cli.out("config", "set", "smtp.port", str(server.port))
    cli.out("config", "set", "smtp.security", "none")
    cli.out("config", "set", "smtp.from", "support@deskbell.test")
    cli.out("config", "set", "unseen_delay_s", str(delay_s))
    return number


def _to(msg: Message) -> list[str]:
    return [addr.lower() for _, addr in getaddresses([str(msg["To"])])]


def _recorded(cli: Deskbell, count: int) -> bool:
    """`count` emails are out and their outcomes recorded: nothing queued or in flight."""
    out = [e for e in cli.json("emails", "--json") if e["direction"] == "out"]
    return len(out) >= count and all(e["status"] not in ("queued", "sending") for e in out)


def _stop(proc: subprocess.Popen[str]) -> int:
    """Stop serve and wait for it: after this nothing more can be sent, so a test can count
    what was (a generous deadline: a busy machine is slow, not wrong)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_t3_r2_r4_e1_internal_message_is_emailed_to_the_follower_only(
    deskbell: Deskbell, smtp_server: SmtpServer
) -> None:
    number = _set_up(deskbell, smtp_server, delay_s=1)
    posted = time.monotonic()  # before the command: the message is created after this
    message_id = int(deskbell.out("post", str(number), "--as", ANN, "--internal", "Bob, look?"))
    serve = deskbell.serve()
    assert wait_until(lambda: len(smtp_server.handler.messages) >= 1, timeout_s=60), (
        deskbell.serve_log()
    )
    assert time.monotonic() - posted >= 1.0  # E1: never before the delay
    assert wait_until(lambda: _recorded(deskbell, 1), timeout_s=60), deskbell.serve_log()
    assert _stop(serve) == 0
    [msg] = smtp_server.handler.messages  # nothing else followed: not Carl (R2), not Ann (R4)
    assert _to(msg) == [BOB]
    assert str(msg["Subject"]) == f"[#{number}] Printer on fire"
    assert msg["Message-ID"]

    shown = deskbell.json("item", "show", str(number), "--json")
    assert {"number", "title", "status", "followers", "messages"} <= shown.keys()
    assert shown["number"] == number
    assert shown["title"] == "Printer on fire"
    assert sorted(shown["followers"]) == sorted([ANN, BOB, CARL])
    [m] = shown["messages"]
    assert {"id", "conversation", "author", "text", "seen_by", "emailed_to"} <= m.keys()
    assert (m["id"], m["conversation"], m["author"], m["text"]) == (
        message_id,
        "internal",
        ANN,
        "Bob, look?",
    )
    assert m["seen_by"] == []
    assert m["emailed_to"] == [BOB]

    wanted = str(msg["Message-ID"]).strip().strip("<>")
    log = deskbell.json("emails", "--json")
    emails = [e for e in log if e["message_id"].strip("<>") == wanted]
    assert len(emails) == 1, (wanted, log)
    [entry] = emails
    keys = {"direction", "status", "from", "to", "subject", "message_id", "reason", "created_at"}
    assert keys <= entry.keys()
    assert (entry["direction"], entry["status"], entry["to"]) == ("out", "sent", [BOB])
    assert entry["subject"] == f"[#{number}] Printer on fire"
    assert entry["reason"] is None
    assert "T" in entry["created_at"]


def test_r3_external_message_reaches_users_not_its_customer_author(
    deskbell: Deskbell, smtp_server: SmtpServer
) -> None:
    number = _set_up(deskbell, smtp_server, delay_s=1)
    deskbell.out("post", str(number), "--as", CARL, "--external", "It smokes.")
    serve = deskbell.serve()
    assert wait_until(lambda: len(smtp_server.handler.messages) >= 2, timeout_s=60), (
        deskbell.serve_log()
    )
    assert wait_until(lambda: _recorded(deskbell, 2), timeout_s=60), deskbell.serve_log()
    assert _stop(serve) == 0
    assert sorted(a for m in smtp_server.handler.messages for a in _to(m)) == [ANN, BOB]


def test_s3_seen_before_the_email_goes_out_prevents_it(
    deskbell: Deskbell, smtp_server: SmtpServer
) -> None:
    """S3, E3: seen before its email goes out, a message is never emailed. Everything is
    written before serve starts, so no command's speed can decide the outcome (the seen
    message is past its delay when serve first looks at it)."""
    number = _set_up(deskbell, smtp_server, delay_s=1)
    message_id = int(deskbell.out("post", str(number), "--as", ANN, "--internal", "seen soon"))
    deskbell.out("seen", str(number), "--as", BOB)
    # A second message that nobody sees proves serve was really sending.
    deskbell.out("post", str(number), "--as", BOB, "--internal", "for Ann")
    serve = deskbell.serve()
    assert wait_until(lambda: len(smtp_server.handler.messages) >= 1, timeout_s=60), (
        deskbell.serve_log()
    )
    assert wait_until(lambda: _recorded(deskbell, 1), timeout_s=60), deskbell.serve_log()
    assert _stop(serve) == 0
    [msg] = smtp_server.handler.messages
    assert _to(msg) == [ANN]
    assert "for Ann" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    shown = deskbell.json("item", "show", str(number), "--json")
    first = next(m for m in shown["messages"] if m["id"] == message_id)
    assert first["seen_by"] == [BOB]
    assert first["emailed_to"] == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_t3_serve_stops_promptly_and_cleanly_on_a_signal(
    deskbell: Deskbell, smtp_server: SmtpServer, sig: signal.Signals
) -> None:
    _set_up(deskbell, smtp_server, delay_s=60)
    serve = deskbell.serve()
    assert wait_until(lambda: "running" in deskbell.serve_log(), timeout_s=60), deskbell.serve_log()
    serve.send_signal(sig)
    assert serve.wait(timeout=60) == 0
    assert "Traceback" not in deskbell.serve_log()
