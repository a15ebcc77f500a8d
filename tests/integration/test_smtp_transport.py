"""SMTP transport against real aiosmtpd servers on loopback that misbehave on the wire (E6, E7,
E9, E11). Nothing on the client side is patched."""

from __future__ import annotations

import asyncio
from email.utils import make_msgid

import pytest

from services.domain.schedule import SmtpVerdict
from services.errors import InputError, MailServerError, MailServerUnreachableError
from services.mail.smtp import Outgoing, Security, SmtpSender, SmtpSettings, SmtpTimeouts
from tests.support.smtpd import SmtpServer, free_port, settings_for
from tests.support.tls import CertBundle

SENDER = "deskbell@desk.example"
ALICE = "alice@example.org"
BOB = "bob@example.org"


def message(*, to: str = ALICE, subject: str = "[#7] Printer on fire") -> bytes:
    msgid = make_msgid(domain="desk.example")
    return (
        f"From: Deskbell <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: {msgid}\r\n\r\nA new message is waiting.\r\n"
    ).encode()


def outgoing(key: int = 1, *recipients: str) -> Outgoing:
    to = recipients or (ALICE,)
    return Outgoing(key=key, sender=SENDER, recipients=to, data=message(to=to[0]))


def sender_for(server: SmtpServer, **settings: object) -> SmtpSender:
    return SmtpSender(settings=settings_for(server, **settings), local_hostname="client.test")  # type: ignore[arg-type]


async def test_e9_one_connection_serves_many_emails(smtp_server: SmtpServer) -> None:
    async with sender_for(smtp_server) as sender:
        outcomes = [await sender.send(outgoing(n)) for n in range(20)]

    assert [o.verdict for o in outcomes] == [SmtpVerdict.SENT] * 20
    assert [o.key for o in outcomes] == list(range(20))
    assert smtp_server.handler.connections == 1
    assert len(smtp_server.handler.messages) == 20


async def test_e7_message_id_and_bytes_arrive_unchanged(smtp_server: SmtpServer) -> None:
    item = outgoing(1)
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(item)

    assert outcome.verdict is SmtpVerdict.SENT
    assert outcome.code == 250
    assert outcome.sent_to == (ALICE,)
    received = smtp_server.handler.messages[0]
    assert f"Message-ID: {received['Message-ID']}".encode() in item.data
    assert smtp_server.handler.envelopes[0].mail_from == SENDER


async def test_e9_starttls_with_the_ca_sends(smtp_starttls_server: SmtpServer) -> None:
    async with sender_for(smtp_starttls_server) as sender:
        outcome = await sender.send(outgoing())

    assert outcome.verdict is SmtpVerdict.SENT
    assert len(smtp_starttls_server.handler.messages) == 1


async def test_e9_starttls_certificate_is_checked(smtp_starttls_server: SmtpServer) -> None:
    async with sender_for(smtp_starttls_server, trust_test_ca=False) as sender:
        outcome = await sender.send(outgoing())

    assert outcome.verdict is SmtpVerdict.RETRY
    assert "certificate" in outcome.reply
    assert outcome.recipients[0].verdict is SmtpVerdict.RETRY
    assert smtp_starttls_server.handler.messages == []


async def test_e9_starttls_cannot_be_stripped(smtp_server: SmtpServer) -> None:
    """A server (or a man in the middle) that offers no STARTTLS gets no plain-text email."""
    settings = SmtpSettings(
        host=smtp_server.host,
        port=smtp_server.port,
        security=Security.STARTTLS,
        timeouts=SmtpTimeouts.uniform(5),
    )
    async with SmtpSender(settings=settings, local_hostname="client.test") as sender:
        outcome = await sender.send(outgoing())

    assert outcome.verdict is SmtpVerdict.RETRY
    assert "STARTTLS" in outcome.reply
    assert smtp_server.handler.commands == []


async def test_e9_implicit_tls(smtp_tls_server: SmtpServer) -> None:
    async with sender_for(smtp_tls_server) as sender:
        first = await sender.send(outgoing(1))
        second = await sender.send(outgoing(2))

    assert (first.verdict, second.verdict) == (SmtpVerdict.SENT, SmtpVerdict.SENT)
    assert smtp_tls_server.handler.connections == 1


async def test_e9_implicit_tls_certificate_is_checked(smtp_tls_server: SmtpServer) -> None:
    async with sender_for(smtp_tls_server, trust_test_ca=False) as sender:
        outcome = await sender.send(outgoing())

    assert outcome.verdict is SmtpVerdict.RETRY
    assert "certificate" in outcome.reply
    assert smtp_tls_server.handler.messages == []


@pytest.mark.parametrize(
    "reply",
    [
        "421 4.3.2 Service shutting down",
        "451 4.3.0 Mail server temporarily rejected message",
        "552 5.3.4 Message size exceeds fixed limit",
    ],
)
async def test_e6_temporary_replies_retry_then_next_send_works(
    smtp_server: SmtpServer, reply: str
) -> None:
    smtp_server.handler.fail_next_n = 1
    smtp_server.handler.fail_reply = reply
    async with sender_for(smtp_server) as sender:
        failed = await sender.send(outgoing(1))
        again = await sender.send(outgoing(2))

    assert failed.verdict is SmtpVerdict.RETRY
    assert failed.code == int(reply[:3])
    assert failed.reply == reply[4:]
    assert failed.retry_to == (ALICE,)
    assert again.verdict is SmtpVerdict.SENT
    assert len(smtp_server.handler.messages) == 1


async def test_e6_550_fails_at_once_with_the_servers_words(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_reply = "550 5.7.1 Message rejected as spam"
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(outgoing())

    assert outcome.verdict is SmtpVerdict.FAILED
    assert (outcome.code, outcome.reply) == (550, "5.7.1 Message rejected as spam")
    assert outcome.failed_to == (ALICE,)


async def test_e6_sender_refused_fails_every_recipient(smtp_server: SmtpServer) -> None:
    smtp_server.handler.mail_reply = "553 5.7.1 Sender not allowed"
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(outgoing(1, ALICE, BOB))

    assert outcome.verdict is SmtpVerdict.FAILED
    assert outcome.failed_to == (ALICE, BOB)
    assert {r.code for r in outcome.recipients} == {553}


async def test_e6_each_recipient_has_its_own_outcome(smtp_server: SmtpServer) -> None:
    carol = "carol@example.org"
    smtp_server.handler.rcpt_replies = {
        BOB: "550 5.1.1 No such user",
        carol: "452 4.2.2 Mailbox full",
    }
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(outgoing(1, ALICE, BOB, carol))

    by_address = {r.address: r for r in outcome.recipients}
    assert by_address[ALICE].verdict is SmtpVerdict.SENT
    assert (by_address[BOB].verdict, by_address[BOB].code) == (SmtpVerdict.FAILED, 550)
    assert by_address[BOB].reply == "5.1.1 No such user"
    assert (by_address[carol].verdict, by_address[carol].code) == (SmtpVerdict.RETRY, 452)
    # Someone may still get it: the email as a whole is to be retried, for carol only.
    assert outcome.verdict is SmtpVerdict.RETRY
    assert outcome.retry_to == (carol,)
    assert smtp_server.handler.envelopes[0].rcpt_tos == [ALICE]


async def test_e6_refused_recipient_keeps_its_verdict_when_data_fails(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.handler.rcpt_replies = {BOB: "550 5.1.1 No such user"}
    smtp_server.handler.data_reply = "451 4.3.0 Try later"
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(outgoing(1, ALICE, BOB))

    assert outcome.retry_to == (ALICE,)
    assert outcome.failed_to == (BOB,)


async def test_e6_all_recipients_refused(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies = {ALICE: "550 5.1.1 No such user"}
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(outgoing(1, ALICE))
        again = await sender.send(outgoing(2, BOB))

    assert (outcome.verdict, outcome.code) == (SmtpVerdict.FAILED, 550)
    assert again.verdict is SmtpVerdict.SENT
    assert "DATA" not in smtp_server.handler.commands[:3]


async def test_e6_rset_between_messages_after_a_failure(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies = {ALICE: "550 5.1.1 No such user"}
    async with sender_for(smtp_server) as sender:
        await sender.send(outgoing(1, ALICE))
        await sender.send(outgoing(2, BOB))
        await sender.send(outgoing(3, BOB))

    commands = smtp_server.handler.commands
    assert commands == ["MAIL", "RCPT", "RSET", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"]
    assert smtp_server.handler.connections == 1


async def test_e7_drop_after_data_is_retried_not_lost(smtp_server: SmtpServer) -> None:
    smtp_server.handler.drop_after_data = True
    async with sender_for(smtp_server) as sender:
        dropped = await sender.send(outgoing(1))
        smtp_server.handler.drop_after_data = False
        resent = await sender.send(outgoing(1))

    assert dropped.verdict is SmtpVerdict.RETRY
    assert dropped.code is None
    assert "server closed the connection after DATA" in dropped.reply
    assert resent.verdict is SmtpVerdict.SENT
    assert smtp_server.handler.connections == 2
    assert len(smtp_server.handler.messages) == 1


async def test_e6_slow_server_times_out_and_retries(smtp_server: SmtpServer) -> None:
    smtp_server.handler.delay_data_s = 0.5
    async with sender_for(smtp_server, timeout_s=0.2) as sender:
        outcome = await sender.send(outgoing())
        assert not sender.connected  # a late answer must not pair with the next command

    assert outcome.verdict is SmtpVerdict.RETRY
    assert "timed out after 0.2 s" in outcome.reply
    await asyncio.sleep(0.4)  # past the server's delay: it must not count the message
    assert smtp_server.handler.messages == []


async def test_e6_server_down_is_retried() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), security=Security.NONE)
    async with SmtpSender(settings=settings, local_hostname="client.test") as sender:
        outcome = await sender.send(outgoing(1, ALICE, BOB))

    assert outcome.verdict is SmtpVerdict.RETRY
    assert "connection refused" in outcome.reply
    assert outcome.retry_to == (ALICE, BOB)


async def test_e9_reconnects_when_the_server_comes_back(smtp_server: SmtpServer) -> None:
    async with sender_for(smtp_server) as sender:
        before = await sender.send(outgoing(1))
        await asyncio.to_thread(smtp_server.stop)
        during = await sender.send(outgoing(2))
        await asyncio.to_thread(smtp_server.start)
        after = await sender.send(outgoing(2))
        later = await sender.send(outgoing(3))

    assert before.verdict is SmtpVerdict.SENT
    assert during.verdict is SmtpVerdict.RETRY
    assert "connection refused" in during.reply
    assert (after.verdict, later.verdict) == (SmtpVerdict.SENT, SmtpVerdict.SENT)
    assert smtp_server.handler.connections == 1  # counted since the restart
    assert len(smtp_server.handler.messages) == 3


@pytest.mark.parametrize(
    "bad",
    [
        "bob@example.org\r\nRCPT TO:<evil@example.org>",
        "bob@example.org\nDATA",
        "bob@example.org\u2028x",
        "bob@example.org> NOTIFY=NEVER",
        "Bob <bob@example.org>",
        "",
    ],
)
async def test_e11_unsafe_recipient_refused_before_the_server(
    smtp_server: SmtpServer, bad: str
) -> None:
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(Outgoing(1, SENDER, (bad,), message()))

    assert outcome.verdict is SmtpVerdict.FAILED
    assert outcome.recipients[0].code is None
    assert outcome.reply.startswith("not sent: the address")
    assert smtp_server.handler.connections == 0


async def test_e11_unsafe_sender_refused_and_safe_recipient_unharmed(
    smtp_server: SmtpServer,
) -> None:
    async with sender_for(smtp_server) as sender:
        bad_sender = await sender.send(Outgoing(1, "a@x.org\r\nRSET", (ALICE,), message()))
        mixed = await sender.send(Outgoing(2, SENDER, (ALICE, "b@x.org\r\nQUIT"), message()))

    assert bad_sender.verdict is SmtpVerdict.FAILED
    assert "sender address" in bad_sender.reply
    assert mixed.sent_to == (ALICE,)
    assert mixed.failed_to == ("b@x.org\r\nQUIT",)
    assert smtp_server.handler.envelopes[0].rcpt_tos == [ALICE]


async def test_e9_check_returns_the_greeting_and_logs_in(
    smtp_certificates: CertBundle,
) -> None:
    with SmtpServer(tls=smtp_certificates, users={"desk": "s3cret"}) as server:
        good = sender_for(server, username="desk", password="s3cret")
        async with good:
            answer = await good.check()
            sent = await good.send(outgoing())
        assert answer.startswith("220 ")
        assert "logged in as desk" in answer
        assert sent.verdict is SmtpVerdict.SENT
        assert server.handler.connections == 1  # the send reused the checked connection

        async with sender_for(server, username="desk", password="wrong") as bad:
            with pytest.raises(MailServerError, match="login refused"):
                await bad.check()
            refused = await bad.send(outgoing())
        assert refused.verdict is SmtpVerdict.RETRY  # the server's fault, not the email's
        assert "login refused" in refused.reply


async def test_e9_check_without_auth_on_offer_says_so(smtp_server: SmtpServer) -> None:
    async with sender_for(smtp_server, username="desk", password="pw") as sender:
        with pytest.raises(MailServerError, match=r"no login \(AUTH\)"):
            await sender.check()


async def test_e9_check_without_a_server_is_a_connection_error() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), security=Security.TLS)
    async with SmtpSender(settings=settings, local_hostname="client.test") as sender:
        with pytest.raises(MailServerUnreachableError, match="connection refused") as caught:
            await sender.check()
    assert isinstance(caught.value, ConnectionError)


async def test_e9_check_with_untrusted_certificate(smtp_tls_server: SmtpServer) -> None:
    async with sender_for(smtp_tls_server, trust_test_ca=False) as sender:
        with pytest.raises(MailServerError, match="certificate") as caught:
            await sender.check()
    assert not isinstance(caught.value, ConnectionError)


def test_e9_settings_never_show_the_password() -> None:
    settings = SmtpSettings(
        host="smtp.example.org",
        port=587,
        security=Security.STARTTLS,
        username="desk",
        password="hunter2-secret",
    )
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings)
    assert "desk" in repr(settings)


@pytest.mark.parametrize(
    "bad",
    [
        {"host": "", "port": 25},
        {"host": "smtp.example.org\r\nX", "port": 25},
        {"host": "smtp.example.org", "port": 0},
        {"host": "smtp.example.org", "port": 70000},
    ],
)
def test_e9_settings_refuse_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(InputError):
        SmtpSettings(security=Security.NONE, **bad)  # type: ignore[arg-type]


def test_e7_timeouts_default_to_rfc_5321_and_refuse_nonsense() -> None:
    t = SmtpSettings(host="smtp.example.org", port=587, security=Security.STARTTLS).timeouts
    assert (t.greeting, t.mail, t.rcpt, t.data_init, t.data_block, t.data_term) == (
        300,
        300,
        300,
        120,
        180,
        600,
    )
    with pytest.raises(InputError):
        SmtpTimeouts(data_term=0)


async def test_e7_cancelled_send_drops_the_connection(smtp_server: SmtpServer) -> None:
    """Shut down mid-DATA: the connection's state is unknown, so the next send starts afresh."""
    smtp_server.handler.delay_data_s = 0.5
    async with sender_for(smtp_server) as sender:
        task = asyncio.create_task(sender.send(outgoing(1)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not sender.connected
        smtp_server.handler.delay_data_s = 0
        outcome = await sender.send(outgoing(2))

    assert outcome.verdict is SmtpVerdict.SENT
    assert smtp_server.handler.connections == 2
    assert len(smtp_server.handler.messages) == 1


async def test_e6_international_address_uses_smtputf8(smtp_server: SmtpServer) -> None:
    async with sender_for(smtp_server) as sender:
        outcome = await sender.send(outgoing(1, "jörg@exämple.org"))

    assert outcome.verdict is SmtpVerdict.SENT
    envelope = smtp_server.handler.envelopes[0]
    assert envelope.rcpt_tos == ["jörg@exämple.org"]
    assert "SMTPUTF8" in envelope.mail_options
