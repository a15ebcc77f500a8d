"""Issue 8, item 8 (E11, I5): a literal "=?" in a customer's subject or name is their text.

The new item's title keeps it exactly, and every email we send about the item carries it
encoded, so the customer's mail client (here Python's parser, and our own) shows exactly
that text, never something it would decode into, and never an extra header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.header import Header
from pathlib import Path

import pytest

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.incoming.parse import parse_mail
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed

OUR = "support@deskbell.test"
SUBJECT = "Error =?utf-8?B?SGk=?= in the log"
NAME = "Dana =?UTF-8?Q?=0A?=Bcc: victim@evil.test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(
    tmp_path: Path, clock: ManualClock, smtp_server: SmtpServer
) -> AsyncIterator[Service]:
    service = await open_service(tmp_path, clock=clock)
    await service.set_config("smtp.host", "127.0.0.1")
    await service.set_config("smtp.port", str(smtp_server.port))
    await service.set_config("smtp.security", "none")
    await service.set_config("smtp.from", OUR)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


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
