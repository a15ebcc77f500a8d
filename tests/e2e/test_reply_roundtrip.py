"""End to end (I1-I3, I6): a fallback email leaves `deskbell serve` for aiosmtpd; its reply comes
back through `deskbell serve --smtp-listen` and lands in the right conversation; an
out-of-office answer fed to `deskbell mail receive` lands nowhere and triggers nothing."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.utils import make_msgid

import pytest

from tests.e2e.conftest import ROOT, Deskbell, _env, wait_until
from tests.support.smtpd import SmtpServer, free_port

OUR = "support@deskbell.test"


def reply(original: Message, *, body: str, headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Carl <carl@customer.org>"
    msg["To"] = str(original["Reply-To"])
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg["In-Reply-To"] = str(original["Message-ID"])
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(f"{body}\n\n> quoted history\n")
    return msg.as_bytes()


@pytest.fixture
def listen_port() -> int:
    return free_port()


@pytest.fixture
def serving(deskbell: Deskbell, listen_port: int) -> Iterator[subprocess.Popen[str]]:
    log = (deskbell.data_dir / "serve-listen.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--smtp-listen", f"127.0.0.1:{listen_port}"],
        cwd=ROOT,
        env=_env(deskbell.data_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def incoming(deskbell: Deskbell) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(
        deskbell.out("emails", "--direction", "in", "--json")
    )
    return rows


def test_i1_i2_i3_reply_roundtrip_through_serve_and_cli(
    deskbell: Deskbell, smtp_server: SmtpServer, listen_port: int, request: pytest.FixtureRequest
) -> None:
    for key, value in {
        "smtp.host": "127.0.0.1",
        "smtp.port": str(smtp_server.port),
        "smtp.security": "none",
        "smtp.from": OUR,
        "unseen_delay_s": "1",
    }.items():
        deskbell.run("config", "set", key, value)
    deskbell.run("person", "add", "ann@example.com", "--name", "Ann Agent")
    deskbell.run("person", "add", "carl@customer.org", "--name", "Carl", "--customer")
    deskbell.run(
        "item",
        "add",
        "Printer on fire",
        "--requester",
        "carl@customer.org",
        "--follower",
        "ann@example.com",
    )
    serve = request.getfixturevalue("serving")
    deskbell.run("post", "1", "--as", "ann@example.com", "--external", "Is it still burning?")
    assert wait_until(
        lambda: any("carl@customer.org" in str(m["To"]) for m in smtp_server.handler.messages),
        timeout_s=60,
    ), (deskbell.data_dir / "serve-listen.log").read_text()
    original = next(m for m in smtp_server.handler.messages if "carl" in str(m["To"]))
    assert original["X-Loop"] == "deskbell"

    with smtplib.SMTP("127.0.0.1", listen_port, timeout=10) as client:
        client.sendmail("carl@customer.org", [OUR], reply(original, body="Yes, send help."))
    assert wait_until(lambda: len(incoming(deskbell)) == 1, timeout_s=60)
    [entry] = incoming(deskbell)
    assert entry["action"] == "threaded into #1"
    assert entry["status"] == "received"
    shown = deskbell.out("item", "show", "1")
    assert "Yes, send help." in shown
    assert "quoted history" not in shown  # I4
    # The reply is a normal post: Ann is emailed about it once it stays unseen.
    assert wait_until(
        lambda: any("ann@example.com" in str(m["To"]) for m in smtp_server.handler.messages),
        timeout_s=60,
    )

    ooo = reply(original, body="I am out of office.", headers={"Auto-Submitted": "auto-replied"})
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "mail", "receive"],
        cwd=ROOT,
        env=_env(deskbell.data_dir),
        input=ooo,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("ignored: auto-submitted mail")
    assert "I am out of office." not in deskbell.out("item", "show", "1")
    sent = len(smtp_server.handler.messages)
    # Nothing follows the out-of-office: no new email within a few delays.
    assert not wait_until(lambda: len(smtp_server.handler.messages) > sent, timeout_s=2.5)
    assert serve.poll() is None
