"""Bounces on the real service (E7, E10, M6): real emails go out through aiosmtpd from a signed
bounce address; real-shaped delivery reports for them come back through the router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.errors import NotFoundError, PermissionDeniedError
from services.mail.blocked import HARD_BOUNCE_LIMIT
from tests.support.bounces import OUR, Sent, dsn, email_bob, use_smtp_server
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed

HARD = [
    "bounce_postfix.eml",
    "bounce_exim.eml",
    "bounce_exim_plain.eml",
    "bounce_gmail.eml",
    "bounce_microsoft.eml",
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(
    database_url: str, clock: ManualClock, smtp_server: SmtpServer
) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    await use_smtp_server(service, smtp_server)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


async def status_of(svc: Service, email_id: int) -> tuple[str, str | None]:
    [entry] = [e for e in await svc.emails() if e.id == email_id]
    return entry.status, entry.reason


async def test_e7_emails_leave_from_a_bounce_address_that_names_them(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    sent = await email_bob(svc, clock, smtp_server, "hello")
    local, _, domain = sent.envelope_sender.partition("@")
    assert domain == "deskbell.test"
    assert local.startswith(f"support+b{sent.email_id}-")
    # The From header is not touched.
    assert "support@deskbell.test" in str(smtp_server.handler.messages[-1]["From"])


@pytest.mark.parametrize("name", HARD)
async def test_e7_a_real_bounce_marks_that_recipient_bounced_with_the_reason(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer, name: str
) -> None:
    sent = await email_bob(svc, clock, smtp_server, "hello")
    result = await svc.receive_mail(dsn(name, sent))

    assert not result.ignored, result
    assert "bounce" in result.action and "bob@example.com" in result.action
    status, reason = await status_of(svc, sent.email_id)
    assert status == EmailStatus.BOUNCED
    assert reason is not None and reason.startswith("bounced (5.")
    # E10: under the message, Bob's email shows as bounced, with the reason.
    [row] = await svc.messages(conversation_id=1, viewer_id=world.ann)
    [bob] = [e for e in row.status.emailed if e.email == "bob@example.com"]
    assert bob.status == EmailStatus.BOUNCED and bob.detail == reason
    # M6: the report itself shows in Incoming, with what it did.
    incoming = await svc.emails(direction="in")
    assert incoming[0].status == EmailStatus.RECEIVED and incoming[0].action == result.action
    assert [e.id for e in await svc.emails(status="bounced")] == [sent.email_id]


@pytest.mark.parametrize("name", ["bounce_postfix.eml", "bounce_microsoft.eml"])
async def test_e7_a_bounce_to_the_plain_address_is_matched_by_the_original_message_id(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer, name: str
) -> None:
    sent = await email_bob(svc, clock, smtp_server, "hello")
    result = await svc.receive_mail(dsn(name, sent, to=OUR))
    assert result.reason == "Message-ID"
    assert (await status_of(svc, sent.email_id))[0] == EmailStatus.BOUNCED


async def test_e7_forged_reports_change_nothing(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    sent = await email_bob(svc, clock, smtp_server, "hello")
    signature = sent.envelope_sender.split("-", 1)[1].split("@")[0]
    forged_signature = ("a" if signature[0] != "a" else "b") + signature[1:]
    forgeries = [
        # A token with a wrong signature, and an id we never sent.
        Sent(f"support+b{sent.email_id}-{forged_signature}@deskbell.test", "<x.1@x.org>", 0),
        # A valid-looking token for another email id.
        Sent(f"support+b{sent.email_id + 7}-{signature}@deskbell.test", "<never@x.org>", 0),
        # Our real Message-ID, but the report speaks of someone this email never went to.
        Sent(OUR, sent.message_id, 0),
    ]
    for n, forged in enumerate(forgeries):
        raw = dsn("bounce_postfix.eml", forged)
        if n == 2:
            raw = raw.replace(b"bob@example.com", b"mallory@example.org")
        result = await svc.receive_mail(raw)
        assert result.ignored, result
        assert result.reason is not None and result.reason.startswith("delivery report that")
    assert await status_of(svc, sent.email_id) == (EmailStatus.SENT, None)
    assert await svc.bounced_addresses() == []


async def test_e7_soft_reports_are_recorded_but_never_block(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    delayed = await email_bob(svc, clock, smtp_server, "one")
    await svc.receive_mail(dsn("bounce_postfix_delayed.eml", delayed))
    status, reason = await status_of(svc, delayed.email_id)
    assert status == EmailStatus.SENT  # still on its way
    assert reason is not None and reason.startswith("delayed by the receiving side (4.4.1)")
    for n in range(HARD_BOUNCE_LIMIT + 1):
        expired = await email_bob(svc, clock, smtp_server, f"soft {n}")
        await svc.receive_mail(dsn("bounce_postfix_expired.eml", expired))
        status, reason = await status_of(svc, expired.email_id)
        assert status == EmailStatus.BOUNCED
        assert reason is not None and "temporary" in reason
    [bounce] = await svc.bounced_addresses()
    assert (bounce.hard_bounces, bounce.blocked_at) == (0, None)
    assert bounce.soft_bounces == HARD_BOUNCE_LIMIT + 2
    before = len(smtp_server.handler.messages)
    await email_bob(svc, clock, smtp_server, "still emailed")
    assert len(smtp_server.handler.messages) == before + 1


async def test_e7_repeated_hard_bounces_stop_emails_until_an_admin_clears_them(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    for n in range(HARD_BOUNCE_LIMIT):
        sent = await email_bob(svc, clock, smtp_server, f"try {n}")
        report = dsn(HARD[n % len(HARD)], sent)
        await svc.receive_mail(report)
        await svc.receive_mail(report)  # the same report twice counts once
    [bounce] = await svc.bounced_addresses()
    assert bounce.hard_bounces == HARD_BOUNCE_LIMIT and bounce.blocked_at is not None

    before = len(smtp_server.handler.messages)
    await svc.post(
        author="ann@example.com", text="held", item_number=1, kind=ConversationKind.INTERNAL
    )
    clock.advance(61)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    assert len(smtp_server.handler.messages) == before  # nothing reached the server
    held = (await svc.emails(direction="out"))[0]
    assert held.status == EmailStatus.SUPPRESSED
    assert held.reason is not None and "bob@example.com bounced 3 times" in held.reason
    [row] = [
        r for r in await svc.messages(conversation_id=1, viewer_id=world.ann) if r.text == "held"
    ]
    assert [e.status for e in row.status.emailed] == ["suppressed"]

    with pytest.raises(PermissionDeniedError):
        await svc.clear_bounces(address="bob@example.com", acting="bob@example.com")
    await svc.clear_bounces(address="BOB@example.com", acting="ann@example.com")
    assert await svc.bounced_addresses() == []
    with pytest.raises(NotFoundError):
        await svc.clear_bounces(address="bob@example.com", acting="ann@example.com")
    await email_bob(svc, clock, smtp_server, "back")
    assert len(smtp_server.handler.messages) == before + 1
