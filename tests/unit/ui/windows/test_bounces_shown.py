"""Bounces where people look (E7, E10, M6): under the message, in Incoming & Outgoing, and
in the Messaging Center's Bounced addresses, where an administrator clears one. A real
Service on SQLite sends through aiosmtpd; real-shaped delivery reports come back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from services.api import Service
from services.clock import ManualClock
from services.mail.blocked import HARD_BOUNCE_LIMIT
from tests.support.bounces import dsn, email_bob, use_smtp_server
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed
from ui.format import status_parts, status_tooltip
from ui.windows.email_log import STATUSES
from ui.windows.messaging_center import MessagingCenter


@pytest.fixture
async def sending(
    tmp_path: Path, smtp_server: SmtpServer
) -> AsyncIterator[tuple[Service, World, ManualClock]]:
    clock = ManualClock()
    service = await open_service(tmp_path, clock=clock)
    try:
        await use_smtp_server(service, smtp_server)
        yield service, await seed(service, delay_s=60), clock
    finally:
        await service.close()


async def test_e10_a_bounced_email_shows_under_the_message_with_the_reason(
    sending: tuple[Service, World, ManualClock], smtp_server: SmtpServer
) -> None:
    service, w, clock = sending
    sent = await email_bob(service, clock, smtp_server, "hello")
    await service.receive_mail(dsn("bounce_postfix.eml", sent))

    [row] = await service.messages(conversation_id=1, viewer_id=w.ann)
    parts = status_parts(row.status, now=clock.now(), viewer_email="ann@example.com")
    assert ("failed", "Email bounced: Bob Agent") in parts
    assert not any(text.startswith("Emailed to") for _, text in parts)
    tooltip = status_tooltip(row.status, viewer_email="ann@example.com")
    assert "Email to Bob Agent <bob@example.com>: bounced" in tooltip
    assert "User unknown in local recipient table" in tooltip


async def _center(qtbot: QtBot, service: Service, w: World, section: str) -> MessagingCenter:
    center = MessagingCenter(service, await service.person_by_id(w.ann))
    qtbot.addWidget(center)
    center.show()
    center.show_section(section)
    await center.wait_idle()
    return center


async def test_m6_incoming_and_outgoing_filters_bounced_emails(
    qtbot: QtBot, sending: tuple[Service, World, ManualClock], smtp_server: SmtpServer
) -> None:
    service, w, clock = sending
    sent = await email_bob(service, clock, smtp_server, "hello")
    await email_bob(service, clock, smtp_server, "delivered")
    await service.receive_mail(dsn("bounce_gmail.eml", sent))
    center = await _center(qtbot, service, w, "Incoming & Outgoing")
    page = center.log_page

    assert "bounced" in STATUSES
    page.status_combo.setCurrentIndex(page.status_combo.findData("bounced"))
    await page.apply_filter()
    assert page.model.rowCount() == 1
    entry = page.model.entry(0)
    assert (entry.id, entry.status) == (sent.email_id, "bounced")
    assert page.model.index(0, 6).data().startswith("bounced (5.1.1)")


async def test_e7_an_administrator_sees_bounced_addresses_and_clears_one(
    qtbot: QtBot, sending: tuple[Service, World, ManualClock], smtp_server: SmtpServer
) -> None:
    service, w, clock = sending
    center = await _center(qtbot, service, w, "Bounced addresses")
    page = center.bounces_page
    assert page.table.isHidden() and not page.empty_label.isHidden()

    for n in range(HARD_BOUNCE_LIMIT):
        sent = await email_bob(service, clock, smtp_server, f"try {n}")
        await service.receive_mail(dsn("bounce_postfix.eml", sent))
    await page.load()
    assert page.table.rowCount() == 1
    cells = [page.table.item(0, c).text() for c in range(page.table.columnCount())]
    assert cells[:4] == ["bob@example.com", "Stopped", str(HARD_BOUNCE_LIMIT), "0"]
    assert "5.1.1" in cells[5] and "User unknown" in cells[5]

    assert not page.clear_button.isEnabled()  # nothing selected yet
    page.table.selectRow(0)
    assert page.clear_button.isEnabled()
    page.clear_button.click()
    await center.wait_idle()
    assert page.status_label.text() == "bob@example.com gets emails again."
    assert await service.bounced_addresses() == []
    assert page.table.isHidden() and not page.empty_label.isHidden()
    # Cleared, Bob is emailed again.
    before = len(smtp_server.handler.messages)
    await email_bob(service, clock, smtp_server, "back")
    assert len(smtp_server.handler.messages) == before + 1
