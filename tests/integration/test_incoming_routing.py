"""Incoming mail on the real service (I2-I7, M6): replies to real fallback emails, loops, I5.

The fallback emails are produced by the service (post, clock, scheduler, outbox to aiosmtpd);
the replies are built from the caught message's Reply-To and Message-ID, as a mail client would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.header import Header
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path

import pytest

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.incoming.parse import parse_mail
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
OUR = "support@deskbell.test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(
    database_url: str, clock: ManualClock, smtp_server: SmtpServer
) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    await service.set_config("smtp.host", "127.0.0.1")
    await service.set_config("smtp.port", str(smtp_server.port))
    await service.set_config("smtp.security", "none")
    await service.set_config("smtp.from", OUR)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


async def fallback_email(
    svc: Service,
    clock: ManualClock,
    server: SmtpServer,
    *,
    author: str,
    kind: ConversationKind,
    to: str,
    text: str = "Any news?",
) -> Message:
    """Post, let the delay pass, send: the notification email that reached `to`."""
    await svc.post(author=author, text=text, item_number=1, kind=kind)
    clock.advance(61)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    caught = [m for m in server.handler.messages if to in str(m["To"])]
    assert caught, f"no fallback email reached {to}"
    return caught[-1]


def reply_to(
    original: Message,
    *,
    sender: str,
    body: str,
    to: str | None = None,
    threading: bool = True,
    subject: str | None = None,
    headers: dict[str, str] | None = None,
    text: str | None = None,
) -> bytes:
    """A client's reply to `original`: `body` above a quote, or exactly `text` if given."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to if to is not None else str(original["Reply-To"])
    msg["Subject"] = subject if subject is not None else f"Re: {original['Subject']}"
    msg["Message-ID"] = make_msgid(domain="client.example")
    if threading:
        msg["In-Reply-To"] = str(original["Message-ID"])
        msg["References"] = str(original["Message-ID"])
    for name, value in (headers or {}).items():
        msg[name] = value
    quoted = f"{body}\n\nOn Mon, 1 Jan 2024, Deskbell wrote:\n> {original['Subject']}\n"
    msg.set_content(quoted if text is None else text)
    return msg.as_bytes()


async def texts(svc: Service, kind: ConversationKind) -> list[str]:
    return [row.text for k, row in await svc.item_messages(1) if k is kind]


async def test_i2_i3_customer_reply_by_token_in_address_lands_in_external(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
    )
    raw = reply_to(
        original, sender="Carl <carl@customer.org>", body="Still burning.", threading=False
    )
    result = await svc.receive_mail(raw)
    assert str(result) == "threaded into #1"
    assert result.reason == "token in address"
    assert (await texts(svc, ConversationKind.EXTERNAL))[-1] == "Still burning."
    [entry] = [e for e in await svc.emails(direction="in")]
    assert entry.status == EmailStatus.RECEIVED
    assert entry.action == "threaded into #1"
    assert await svc.email_raw(entry.id) == raw  # I4: the original stays in the log


async def test_i2_reply_by_in_reply_to_when_the_address_lost_its_token(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
    )
    raw = reply_to(original, sender="carl@customer.org", body="Answer by header.", to=OUR)
    result = await svc.receive_mail(raw)
    assert str(result) == "threaded into #1"
    assert result.reason == "token in In-Reply-To/References"
    assert (await texts(svc, ConversationKind.EXTERNAL))[-1] == "Answer by header."


async def test_i3_user_reply_goes_to_the_internal_conversation_they_were_emailed_about(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.INTERNAL,
        to="bob@example.com",
        text="Bob, internal question",
    )
    result = await svc.receive_mail(
        reply_to(original, sender="bob@example.com", body="Internal answer from Bob")
    )
    assert str(result) == "threaded into #1"
    assert (await texts(svc, ConversationKind.INTERNAL))[-1] == "Internal answer from Bob"
    assert "Internal answer from Bob" not in await texts(svc, ConversationKind.EXTERNAL)


async def test_i2_i3_reply_is_posted_so_normal_fallback_emails_follow(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
    )
    await svc.receive_mail(reply_to(original, sender="carl@customer.org", body="Please call me."))
    before = len(smtp_server.handler.messages)
    clock.advance(61)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    new = smtp_server.handler.messages[before:]
    assert {str(m["To"]).split("<")[-1].rstrip(">") for m in new} >= {"ann@example.com"}
    assert all("carl@customer.org" not in str(m["To"]) for m in new)  # R4: not its author


async def test_i2_subject_number_threads_for_a_follower(svc: Service, world: World) -> None:
    msg = EmailMessage()
    msg["From"] = "carl@customer.org"
    msg["To"] = OUR
    msg["Subject"] = "Re: [#1] Printer on fire"
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg.set_content("By subject only.")
    result = await svc.receive_mail(msg.as_bytes())
    assert str(result) == "threaded into #1"
    assert result.reason == "[#N] in subject"
    assert (await texts(svc, ConversationKind.EXTERNAL))[-1] == "By subject only."


async def test_i2_subject_number_never_threads_for_a_non_follower(
    svc: Service, world: World
) -> None:
    msg = EmailMessage()
    msg["From"] = "mallory@evil.example"
    msg["To"] = OUR
    msg["Subject"] = "Re: [#1] Printer on fire"
    msg.set_content("Let me in.")
    result = await svc.receive_mail(msg.as_bytes())
    assert str(result) == "created #2"  # a stranger opens a new item instead (I5)
    assert "Let me in." not in await texts(svc, ConversationKind.EXTERNAL)
    assert (await svc.item(2)).title == "Printer on fire"


async def test_i2_forged_token_never_threads(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
    )
    real = str(original["Reply-To"]).split("+", 1)[1].split("@", 1)[0]
    forged = real[:-1] + ("a" if real[-1] != "a" else "b")
    raw = reply_to(
        original,
        sender="mallory@evil.example",
        body="Forged!",
        to=f"support+{forged}@deskbell.test",
        threading=False,
        subject="Hello",
    )
    result = await svc.receive_mail(raw)
    assert result.action == "created #2"
    assert "Forged!" not in await texts(svc, ConversationKind.EXTERNAL)
    # A genuine token, forwarded to a stranger, does not thread either.
    raw = reply_to(original, sender="eve@evil.example", body="Forwarded!", subject="Fwd: x")
    result = await svc.receive_mail(raw)
    assert result.action == "created #3"
    assert "Forwarded!" not in await texts(svc, ConversationKind.EXTERNAL)


async def test_i6_out_of_office_reply_lands_nowhere_and_triggers_nothing(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
    )
    sent_before = len(smtp_server.handler.messages)
    raw = reply_to(
        original,
        sender="carl@customer.org",
        body="I am out of office until Monday.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    result = await svc.receive_mail(raw)
    assert result.ignored
    assert "Auto-Submitted" in (result.reason or "")
    assert "I am out of office until Monday." not in await texts(svc, ConversationKind.EXTERNAL)
    clock.advance(3600)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    assert len(smtp_server.handler.messages) == sent_before
    assert len(await svc.items()) == 1


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("loop_*.eml")))
async def test_i6_every_loop_rule_is_logged_as_ignored_with_its_reason(
    svc: Service, world: World, name: str
) -> None:
    raw = (CORPUS / name).read_bytes()
    # The corpus's own address and domain are ours here: support@deskbell.test.
    result = await svc.receive_mail(raw)
    assert result.ignored, name
    assert result.reason
    [entry] = await svc.emails(direction="in")
    assert entry.status == EmailStatus.IGNORED
    assert entry.reason == result.reason
    assert len(await svc.items()) == 1


async def test_i6_plus_addressed_own_address_is_a_loop(svc: Service, world: World) -> None:
    msg = EmailMessage()
    msg["From"] = "support+c1r2-abcdefabcdefabcd@deskbell.test"
    msg["To"] = OUR
    msg["Subject"] = "hello"
    msg.set_content("me again")
    result = await svc.receive_mail(msg.as_bytes())
    assert result.ignored
    assert "own address" in (result.reason or "")


async def test_i5_stranger_opens_an_item_as_customer_and_follower(
    svc: Service, world: World
) -> None:
    result = await svc.receive_mail((CORPUS / "normal_new.eml").read_bytes())
    assert result.action == "created #2"
    item = await svc.item(2)
    assert item.requester is not None
    assert item.requester.email in {f.email for f in item.followers}
    assert item.requester.kind == "customer"
    [(kind, first)] = await svc.item_messages(2)
    assert kind is ConversationKind.EXTERNAL
    assert first.source == "email"


async def test_i5_turned_off_stranger_mail_is_ignored_with_reason(
    svc: Service, world: World
) -> None:
    await svc.set_config("mail.create_items", "false")
    result = await svc.receive_mail((CORPUS / "normal_new.eml").read_bytes())
    assert result.ignored
    assert "turned off" in (result.reason or "")
    assert len(await svc.items()) == 1


async def test_i5_user_mail_that_threads_nowhere_is_ignored(svc: Service, world: World) -> None:
    msg = EmailMessage()
    msg["From"] = "ann@example.com"
    msg["To"] = OUR
    msg["Subject"] = "Something new"
    msg.set_content("Hello")
    result = await svc.receive_mail(msg.as_bytes())
    assert str(result) == "ignored: no conversation found"


async def test_i6_sender_held_after_fifteen_mails_in_ten_minutes(
    svc: Service, world: World, clock: ManualClock
) -> None:
    results = []
    for n in range(17):
        msg = EmailMessage()
        msg["From"] = "carl@customer.org"
        msg["To"] = OUR
        msg["Subject"] = "Re: [#1] Printer on fire"
        msg.set_content(f"flood {n}")
        results.append(await svc.receive_mail(msg.as_bytes()))
        clock.advance(10)
    assert all(not r.ignored for r in results[:15])
    assert all(r.ignored and "held" in (r.reason or "") for r in results[15:])
    clock.advance(15 * 60)  # the hold is over: mail flows again
    msg = EmailMessage()
    msg["From"] = "carl@customer.org"
    msg["To"] = OUR
    msg["Subject"] = "Re: [#1] Printer on fire"
    msg.set_content("after the hold")
    assert not (await svc.receive_mail(msg.as_bytes())).ignored


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("malformed_*.eml")))
async def test_i7_malformed_mail_is_logged_and_never_raises(
    svc: Service, world: World, name: str
) -> None:
    result = await svc.receive_mail((CORPUS / name).read_bytes())
    entries = await svc.emails(direction="in")
    assert [e.id for e in entries] == [result.email_id]
    if name == "malformed_no_from.eml":
        assert result.ignored
        assert "sender" in (result.reason or "")


async def test_i7_empty_and_binary_garbage_are_logged_as_ignored(
    svc: Service, world: World
) -> None:
    for raw in (b"", b"\x00\xff\xfe" * 1000, (CORPUS / "empty.eml").read_bytes()):
        result = await svc.receive_mail(raw)
        assert result.ignored
    assert len(await svc.emails(direction="in")) == 3


def bottom_posted(original: Message, *, sender: str, body: str) -> bytes:
    """What mutt or Thunderbird send: the attribution, the whole email quoted, then `body`."""
    part = original.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    quoted = "\n".join(f"> {line}".rstrip() for line in part.get_content().splitlines())
    text = f"On Mon, Jan 05, 2026 at 09:00:00AM +0000, Deskbell wrote:\n{quoted}\n{body}"
    return reply_to(original, sender=sender, body="", text=text)


async def email_to_carl(
    svc: Service, clock: ManualClock, server: SmtpServer, text: str = "Any news?"
) -> Message:
    return await fallback_email(
        svc,
        clock,
        server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
        text=text,
    )


async def test_i4_a_bottom_posted_reply_posts_only_its_new_text(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """Issue 8, item 1: the new text below the quote is the message, not the whole email."""
    original = await email_to_carl(svc, clock, smtp_server, text="Which model is it?")
    raw = bottom_posted(
        original, sender="carl@customer.org", body="\nAn HP LaserJet 4250.\n\n-- \nCarl\n"
    )
    assert str(await svc.receive_mail(raw)) == "threaded into #1"
    assert (await texts(svc, ConversationKind.EXTERNAL))[-1] == "An HP LaserJet 4250."


async def test_i4_a_reply_without_new_text_is_ignored_and_emails_nobody(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """Issue 8, item 1: a reply that only quotes is logged as ignored, not posted as the
    whole quoted email (which would then be emailed to every follower again)."""
    original = await email_to_carl(svc, clock, smtp_server)
    before = await texts(svc, ConversationKind.EXTERNAL)
    raw = bottom_posted(original, sender="carl@customer.org", body="")
    result = await svc.receive_mail(raw)
    assert result.ignored
    assert result.reason == "no new text: the reply only quotes earlier mail"
    assert await texts(svc, ConversationKind.EXTERNAL) == before
    [entry] = await svc.emails(direction="in")
    assert entry.status == EmailStatus.IGNORED
    assert await svc.email_raw(entry.id) == raw  # I4: the original stays in the log
    sent = len(smtp_server.handler.messages)
    clock.advance(3600)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    assert len(smtp_server.handler.messages) == sent


async def test_i5_a_forward_without_a_comment_opens_an_item_with_what_was_forwarded(
    svc: Service, world: World
) -> None:
    """Nothing of it was ever ours: for a new item the whole mail is the request."""
    msg = EmailMessage()
    msg["From"] = "dana@example.org"
    msg["To"] = OUR
    msg["Subject"] = "Fwd: Printer"
    msg.set_content(
        "Begin forwarded message:\n\nFrom: Bob <bob@example.net>\nSubject: Printer\n"
        "Date: 4 January 2026 at 18:00:00 CET\nTo: Dana <dana@example.org>\n\n"
        "The printer on floor 2 is jammed.\n"
    )
    assert str(await svc.receive_mail(msg.as_bytes())) == "created #2"
    [(_kind, first)] = await svc.item_messages(2)
    assert "The printer on floor 2 is jammed." in first.text


# Issue 8, item 8 (E11, I5): a literal "=?" in a customer's subject or name is their text. The
# new item's title keeps it exactly, and every email we send about the item carries it encoded,
# so the customer's mail client (Python's parser here, and ours) shows exactly that text, never
# what it would decode into, and never an extra header.
SUBJECT = "Error =?utf-8?B?SGk=?= in the log"
NAME = "Dana =?UTF-8?Q?=0A?=Bcc: victim@evil.test"


def customer_mail() -> bytes:
    """As a mail client sends it: the literal text encoded, since it holds "=?"."""
    name = Header(NAME, "utf-8").encode()
    subject = Header(SUBJECT, "utf-8").encode()
    return (
        f"From: {name} <dana@example.org>\r\nTo: {OUR}\r\nSubject: {subject}\r\n"
        "Message-ID: <literal.1@example.org>\r\nContent-Type: text/plain\r\n\r\n"
        "The log says it.\r\n"
    ).encode("ascii")


async def test_e11_i5_literal_encoded_words_survive_into_the_item_and_every_email(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    result = await svc.receive_mail(customer_mail())
    assert str(result) == "created #2"
    assert (await svc.item(2)).title == SUBJECT
    assert (await svc.person("dana@example.org")).name == NAME
    [entry] = await svc.emails(direction="in")
    assert entry.subject == SUBJECT

    await svc.post(
        author="ann@example.com", text="Which log?", item_number=2, kind=ConversationKind.EXTERNAL
    )
    clock.advance(61)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    [sent] = [e for e in await svc.emails(direction="out") if "dana@example.org" in e.to_addrs]
    raw = await svc.email_raw(sent.id)
    assert raw is not None
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    [caught] = [m for m in smtp_server.handler.messages if "dana@example.org" in str(m["To"])]
    assert str(caught["Subject"]) == f"[#2] {SUBJECT}"
    assert caught["To"].addresses[0].display_name == NAME
    assert caught["Bcc"] is None
    assert all(name.lower() != "bcc" for name in caught)
    mail = parse_mail(raw)
    assert mail.subject == f"[#2] {SUBJECT}"
    assert mail.header("Bcc") is None

    # The customer's reply threads, and the title stays as the customer wrote it.
    reply = (
        f"From: dana@example.org\r\nTo: {caught['Reply-To']}\r\n"
        f"Subject: {Header('Re: ' + str(caught['Subject']), 'utf-8').encode()}\r\n"
        f"In-Reply-To: {caught['Message-ID']}\r\n\r\nThe error log of today.\r\n"
    ).encode("ascii")
    assert str(await svc.receive_mail(reply)) == "threaded into #2"
    assert (await svc.item(2)).title == SUBJECT


async def test_e11_an_agent_may_name_an_item_with_encoded_word_text(
    svc: Service, world: World
) -> None:
    """The command line and the app accept such text too; the composer encodes it."""
    item = await svc.create_item(title="=?UTF-8?Q?=0A?=Bcc: x@y.z", followers=["ann@example.com"])
    assert (await svc.item(item.number)).title == "=?UTF-8?Q?=0A?=Bcc: x@y.z"
