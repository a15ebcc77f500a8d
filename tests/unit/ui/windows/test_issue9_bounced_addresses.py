"""E7 (left over from issue 8): the Messaging Center lists the addresses whose emails bounced,
blocked ones first, and an administrator clears one there so that it is emailed again."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from services.api import ConversationKind
from services.clock import ManualClock
from tests.support.smtpd import SmtpServer
from tests.support.world import open_service, seed
from ui.windows.messaging_center import MessagingCenter

CORPUS = Path(__file__).resolve().parents[3] / "corpus"
OUR = "support@deskbell.test"
BOB = "bob@example.com"


async def test_e7_bounced_addresses_are_listed_and_an_admin_clears_one(
    qtbot: QtBot, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    clock = ManualClock()
    service = await open_service(tmp_path, clock=clock)
    try:
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(smtp_server.port)),
            ("smtp.security", "none"),
            ("smtp.from", OUR),
        ):
            await service.set_config(key, value)
        world = await seed(service, delay_s=60)
        # Bob's notification email leaves, then his server sends it back.
        await service.post(
            author="ann@example.com", text="hello", item_number=1, kind=ConversationKind.INTERNAL
        )
        clock.advance(61)
        await service.run_scheduler_once()
        await service.outbox.flush()
        envelope = smtp_server.handler.envelopes[-1]
        message = smtp_server.handler.messages[-1]
        report = (
            (CORPUS / "bounce_postfix.eml")
            .read_bytes()
            .replace(b"support+VERP@deskbell.test", str(envelope.mail_from).encode())
            .replace(b"<ORIGINAL-MESSAGE-ID>", str(message["Message-ID"]).encode())
        )
        assert not (await service.receive_mail(report)).ignored

        center = MessagingCenter(service, await service.person_by_id(world.ann))
        qtbot.addWidget(center)
        center.show()
        center.show_section("Bounced addresses")
        await center.wait_idle()
        page = center.bounces_page
        assert page.table.rowCount() == 1
        assert page.table.item(0, 0).text() == BOB
        assert "5." in page.table.item(0, 3).text()  # the server's reason
        assert not page.clear_button.isEnabled()  # nothing chosen yet
        page.table.selectRow(0)
        assert page.clear_button.isEnabled()
        page.clear_button.click()
        await center.wait_idle()
        assert await service.bounced_addresses() == []
        assert page.table.rowCount() == 0
        assert page.empty_label.isVisibleTo(center)
        assert "bob@example.com" in page.result_label.text()
    finally:
        await service.close()
