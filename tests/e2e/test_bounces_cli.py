"""E7 end to end: `deskbell serve` sends from a signed bounce address (aiosmtpd sees it as the
envelope sender), real-shaped reports come back through `deskbell mail receive`, repeated hard
bounces stop emails to the address until `deskbell mail clear-bounces` by an administrator."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import SmtpServer

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
LEAD, BOB = "lead@example.com", "bob@example.com"
REPORTS = ["bounce_postfix.eml", "bounce_gmail.eml", "bounce_microsoft.eml"]


def test_e7_bounces_through_serve_and_the_command_line(deskbell: Deskbell) -> None:
    with SmtpServer() as server:
        deskbell.out("person", "add", LEAD, "--name", "Lead")  # the first user: an admin
        deskbell.out("person", "add", BOB, "--name", "Bob")
        number = deskbell.out("item", "add", "Outage", f"--follower={BOB}")
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(server.port)),
            ("smtp.security", "none"),
            ("smtp.from", "support@deskbell.test"),
            ("unseen_delay_s", "1"),
        ):
            deskbell.out("config", "set", key, value)
        serve = deskbell.serve()

        def post_and_wait(text: str, count: int) -> None:
            deskbell.out("post", number, "--as", LEAD, "--internal", text)
            assert wait_until(lambda: len(server.handler.messages) >= count, timeout_s=60), (
                deskbell.serve_log()
            )

        for n, name in enumerate(REPORTS, start=1):
            post_and_wait(f"try {n}", n)
            envelope_sender = str(server.handler.envelopes[-1].mail_from)
            assert re.fullmatch(r"support\+b\d+-[a-z2-7]{16}@deskbell\.test", envelope_sender)
            message_id = str(server.handler.messages[-1]["Message-ID"])
            report = (
                (CORPUS / name)
                .read_text()
                .replace("support+VERP@deskbell.test", envelope_sender)
                .replace("<ORIGINAL-MESSAGE-ID>", message_id)
            )
            said = deskbell.run("mail", "receive", stdin=report).stdout.strip()
            assert said.startswith("recorded a bounce of email") and BOB in said, said

        [bounce] = deskbell.json("mail", "bounces", "--json")
        assert bounce["address"] == BOB and bounce["hard_bounces"] == 3
        assert bounce["blocked_at"] is not None
        bounced = [e for e in deskbell.json("emails", "--json") if e["status"] == "bounced"]
        assert len(bounced) == 3 and all(e["reason"].startswith("bounced (5.") for e in bounced)

        deskbell.out("post", number, "--as", LEAD, "--internal", "held back")

        def held() -> bool:
            newest = deskbell.json("emails", "--json", "--status", "suppressed")
            return any("bounced 3 times" in (e["reason"] or "") for e in newest)

        assert wait_until(held, timeout_s=60), deskbell.serve_log()
        assert len(server.handler.messages) == 3

        refused = deskbell.run("mail", "clear-bounces", BOB, "--as", BOB, check=False)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
        assert "administrator" in refused.stderr
        assert "emailed again" in deskbell.out("mail", "clear-bounces", BOB, "--as", LEAD)
        assert deskbell.json("mail", "bounces", "--json") == []
        post_and_wait("back again", 4)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
