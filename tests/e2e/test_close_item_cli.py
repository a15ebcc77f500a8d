"""End to end (M2, M8): close an item from the command line; the automation's message reaches the
followers by email through `deskbell serve` and a real aiosmtpd, the requester gets the template
email, and both show in `deskbell emails --json`. Refusals exit 1 with one line."""

from __future__ import annotations

import signal
from email.utils import getaddresses

from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import SmtpServer

ANN = "ann@example.com"
BOB = "bob@example.com"
CARL = "carl@customer.org"


def _set_up(cli: Deskbell, server: SmtpServer) -> int:
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
            "--requester",
            CARL,
        )
    )
    for key, value in (
        ("smtp.host", "127.0.0.1"),
        ("smtp.port", str(server.port)),
        ("smtp.security", "none"),
        ("smtp.from", "support@deskbell.test"),
        ("unseen_delay_s", "1"),
    ):
        cli.out("config", "set", key, value)
    return number


def test_m2_m8_close_from_the_cli_tells_followers_and_emails_the_requester(
    deskbell: Deskbell, smtp_server: SmtpServer
) -> None:
    number = _set_up(deskbell, smtp_server)
    autos = deskbell.json("automation", "list", "--json")
    example = next(a for a in autos if a["name"] == "When an item is closed, email its requester")
    deskbell.out("automation", "enable", str(example["id"]))

    assert deskbell.out("item", "close", str(number), "--as", ANN) == f"#{number} closed"
    shown = deskbell.json("item", "show", str(number), "--json")
    assert shown["status"] == "closed"
    [message] = shown["messages"]
    assert message["conversation"] == "internal"
    assert message["text"] == f"[#{number}] Printer on fire was closed by Ann Agent."

    serve = deskbell.serve()
    # Ann and Bob get the inserted message after the delay; Carl (customer) gets the template.
    assert wait_until(lambda: len(smtp_server.handler.messages) >= 3, timeout_s=60), (
        deskbell.serve_log()
    )
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) == 0
    by_to = {getaddresses([str(m["To"])])[0][1].lower(): m for m in smtp_server.handler.messages}
    assert set(by_to) == {ANN, BOB, CARL}
    bob_body = by_to[BOB].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "was closed by Ann Agent" in bob_body
    assert str(by_to[BOB]["Subject"]) == f"[#{number}] Printer on fire"
    assert str(by_to[CARL]["Subject"]) == f"[#{number}] Printer on fire is closed"
    assert str(by_to[CARL]["Auto-Submitted"]) == "auto-generated"
    assert "closed by Ann Agent" not in str(by_to[CARL]["Subject"])

    log = deskbell.json("emails", "--json")
    kinds = sorted((e["kind"], e["to"][0], e["status"]) for e in log)
    assert kinds == [
        ("notification", ANN, "sent"),
        ("notification", BOB, "sent"),
        ("template", CARL, "sent"),
    ]
    assert all(e["reply"] for e in log)  # the server's words are kept
    filtered = deskbell.json("emails", "--json", "--status", "sent", "--direction", "out")
    assert len(filtered) == 3
    assert deskbell.json("emails", "--json", "--direction", "in") == []


def test_m8_refusals_exit_nonzero_with_one_line_and_change_nothing(
    deskbell: Deskbell, smtp_server: SmtpServer
) -> None:
    _set_up(deskbell, smtp_server)
    for args, words in (
        (("automation", "disable", "1"), "cannot be disabled"),
        (("automation", "delete", "1"), "cannot be deleted"),
        (("system-email", "disable", "password_reset"), "always on"),
        (("automation", "set-text", "1", "{{ nope }}"), "unknown variable 'nope'"),
        (("user", "settings", ANN, "--sound", "off", "--as", BOB), "administrator"),
    ):
        done = deskbell.run(*args, check=False)
        assert done.returncode == 1, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert words in lines[0]
    [critical, *_] = deskbell.json("automation", "list", "--json")
    assert critical["critical"]
    assert critical["enabled"]
    assert "nope" not in critical["text"]
    assert "always on" in deskbell.out("system-email", "list")


def test_m5_m8_reset_password_and_template_commands(
    deskbell: Deskbell, smtp_server: SmtpServer
) -> None:
    _set_up(deskbell, smtp_server)
    assert "reset code emailed" in deskbell.out("user", "reset-password", BOB)
    bad = deskbell.data_dir / "bad.txt"
    bad.write_text("Subject: Code\n\nHello {{ person.name }}\n")
    done = deskbell.run("template", "set", "password_reset", "--file", str(bad), check=False)
    assert done.returncode == 1
    assert "must show the code" in done.stderr
    good = deskbell.data_dir / "good.txt"
    good.write_text(
        "Subject: Hi {{ item.ref }}\n\nDone: {{ item.title }}\n"
        "--- html ---\n<p>{{ item.title }}</p>\n"
    )
    assert deskbell.out("template", "set", "mine", "--file", str(good)) == "template mine saved"
    assert deskbell.out("template", "preview", "mine").startswith("Subject: Hi [#12]")
    deskbell.out("template", "test", "mine", "--to", "qa@example.com")
    settings = deskbell.out(
        "user", "settings", BOB, "--sound", "off", "--delay", "300", "--as", ANN
    )
    assert settings == f"{BOB}: email on, sound off, in-app on, delay 300s"
    serve = deskbell.serve()
    assert wait_until(lambda: len(smtp_server.handler.messages) >= 2, timeout_s=60), (
        deskbell.serve_log()
    )
    serve.send_signal(signal.SIGTERM)
    serve.wait(timeout=60)
    subjects = sorted(str(m["Subject"]) for m in smtp_server.handler.messages)
    assert subjects == ["Your Deskbell password reset code", "[test] Hi [#12]"]
