"""The Messaging Center's emails through the real outbox to a real aiosmtpd (M1, M2, M4, M5, E5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from services.api import ConversationKind, Service
from services.clock import ManualClock
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(
    database_url: str, clock: ManualClock, smtp_server: SmtpServer
) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    for key, value in (
        ("smtp.host", "127.0.0.1"),
        ("smtp.port", str(smtp_server.port)),
        ("smtp.security", "none"),
        ("smtp.from", "support@deskbell.test"),
    ):
        await service.set_config(key, value)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


def _plain(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _by_to(server: SmtpServer) -> dict[str, EmailMessage]:
    return {str(m["To"]).rpartition("<")[2].rstrip(">"): m for m in server.handler.messages}  # type: ignore[misc]


async def _tick(svc: Service) -> int:
    await svc.run_scheduler_once()
    return await svc.outbox.flush()


async def test_m2_closing_emails_the_followers_the_inserted_message_after_the_delay(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await svc.close_item(number=1, acting="ann@example.com")
    assert await _tick(svc) == 0
    clock.advance(61)
    assert await _tick(svc) == 2  # Ann and Bob; Carl is a customer and it is internal (R2)
    mails = _by_to(smtp_server)
    assert set(mails) == {"ann@example.com", "bob@example.com"}
    assert "[#1] Printer on fire was closed by Ann Agent." in _plain(mails["bob@example.com"])


async def test_e5_m1_the_critical_text_reaches_the_real_email(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    critical = (await svc.automations.list())[0]
    await svc.automations.set_text(
        critical.id, "Psst, {{ recipient.name }}: news in {{ item.ref }}"
    )
    await svc.post(
        author="ann@example.com", text="hi", item_number=1, kind=ConversationKind.INTERNAL
    )
    clock.advance(61)
    assert await _tick(svc) == 1
    [msg] = smtp_server.handler.messages
    assert "Psst, Bob Agent: news in [#1]" in _plain(msg)  # type: ignore[arg-type]


async def test_m4_m5_template_test_and_reset_emails_leave_through_the_outbox(
    svc: Service, world: World, smtp_server: SmtpServer
) -> None:
    await svc.templates.test_send("item_closed", to="qa@example.com")
    await svc.system_emails.reset_password("bob@example.com")
    await svc.automations.enable(3)  # the shipped "email the requester" example
    info = await svc.create_item(title="Desk", requester="carl@customer.org")
    await svc.close_item(number=info.number, acting="ann@example.com")
    assert await svc.outbox.flush() == 3
    mails = _by_to(smtp_server)
    assert str(mails["qa@example.com"]["Subject"]) == "[test] [#12] Printer on fire is closed"
    reset = _plain(mails["bob@example.com"])  # type: ignore[arg-type]
    code = next(w for w in reset.split() if w.isdigit() and len(w) == 8)
    assert await svc.system_emails.check_reset_code(email="bob@example.com", code=code)
    carl = mails["carl@customer.org"]
    assert str(carl["Subject"]) == f"[#{info.number}] Desk is closed"
    assert carl.get_body(preferencelist=("html",)) is not None
    statuses = {e.to_addrs[0]: e.status for e in await svc.emails()}
    assert set(statuses.values()) == {"sent"}
