"""The IMAP path end to end (I1, I2, I6, I7): a real Dovecot over TLS feeding the real service.

Replies to real fallback emails are delivered into Dovecot; the service's own reader (with the
cursor in the database) takes them, and is restarted between mails.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.store.models import ImapCursor
from tests.integration.test_incoming_routing import OUR, fallback_email, reply_to, texts
from tests.support.dovecot import DovecotServer
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
_folders = itertools.count(1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def folder(dovecot: DovecotServer) -> str:
    name = f"Incoming{next(_folders)}"
    dovecot.create_folder(name)
    return name


@pytest.fixture
async def svc(
    database_url: str,
    clock: ManualClock,
    smtp_server: SmtpServer,
    dovecot: DovecotServer,
    folder: str,
) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    for key, value in {
        "smtp.host": "127.0.0.1",
        "smtp.port": str(smtp_server.port),
        "smtp.security": "none",
        "smtp.from": OUR,
        "smtp.cafile": str(dovecot.cafile),
        "imap.host": "127.0.0.1",
        "imap.port": str(dovecot.tls_port),
        "imap.security": "tls",
        "imap.username": dovecot.user,
        "imap.folder": folder,
    }.items():
        await service.set_config(key, value)
    service.set_imap_password(dovecot.password)
    yield service
    await service.incoming.stop()
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


async def read_until(svc: Service, count: int, *, timeout_s: float = 60.0) -> None:
    """Run the service's reader until `count` incoming mails are logged, then stop it (the
    deadline is generous: the machine may be shared and ten times slower than usual)."""
    assert await svc.incoming.start(poll_interval_s=0.2)
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        while len(await svc.emails(direction="in")) < count:
            assert asyncio.get_running_loop().time() < deadline, "the reader took too long"
            await asyncio.sleep(0.05)
    finally:
        await svc.incoming.stop()


async def test_i1_test_connection_reports_the_folder(svc: Service, dovecot: DovecotServer) -> None:
    summary = await svc.test_imap()
    assert "messages in Incoming" in summary
    assert "IDLE" in summary


async def test_i1_i2_replies_through_dovecot_with_a_reader_restart_between_mails(
    svc: Service,
    world: World,
    clock: ManualClock,
    smtp_server: SmtpServer,
    dovecot: DovecotServer,
    folder: str,
) -> None:
    original = await fallback_email(
        svc,
        clock,
        smtp_server,
        author="ann@example.com",
        kind=ConversationKind.EXTERNAL,
        to="carl@customer.org",
    )
    dovecot.deliver(
        reply_to(original, sender="carl@customer.org", body="First reply via IMAP"), folder=folder
    )
    await read_until(svc, 1)
    assert (await texts(svc, ConversationKind.EXTERNAL))[-1] == "First reply via IMAP"

    # The reader stops; mail arrives meanwhile, malformed mail among it (I7).
    dovecot.deliver((CORPUS / "malformed_no_from.eml").read_bytes(), folder=folder)
    dovecot.deliver((CORPUS / "malformed_nul.eml").read_bytes(), folder=folder)
    ooo = reply_to(
        original,
        sender="carl@customer.org",
        body="Out of office",
        headers={"Auto-Submitted": "auto-replied"},
    )
    dovecot.deliver(ooo, folder=folder)
    dovecot.deliver(
        reply_to(original, sender="carl@customer.org", body="Second reply via IMAP"),
        folder=folder,
    )
    await read_until(svc, 5)
    entries = list(reversed(await svc.emails(direction="in")))
    assert len(entries) == 5  # nothing taken twice across the restart
    assert entries[0].action == "threaded into #1"
    assert entries[1].status == "ignored"
    assert entries[3].status == "ignored"
    assert "Auto-Submitted" in (entries[3].reason or "")
    assert entries[4].action == "threaded into #1"
    external = await texts(svc, ConversationKind.EXTERNAL)
    assert external[-1] == "Second reply via IMAP"
    assert "Out of office" not in external

    # The position lives in the database: a third reader takes nothing old again.
    [(cursor_folder, last_uid)] = await svc.db.read(
        lambda tx: list(tx.conn.execute(select(ImapCursor.folder, ImapCursor.last_uid)))
    )
    assert cursor_folder == folder
    assert last_uid == 5
    settings = svc.incoming.settings()
    assert settings is not None
    reader = svc.incoming.reader_for(settings)
    try:
        assert await reader.poll_once() == 0
    finally:
        await reader.close()
    assert len(await svc.emails(direction="in")) == 5


async def test_i1_reader_survives_a_dovecot_restart(
    svc: Service, world: World, dovecot: DovecotServer, folder: str
) -> None:
    dovecot.deliver((CORPUS / "normal_new.eml").read_bytes(), folder=folder)
    assert await svc.incoming.start(poll_interval_s=0.1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # generous: the machine may be shared and slow
    while len(await svc.emails(direction="in")) < 1:
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    dovecot.stop()  # the server drops the connection
    while svc.incoming.reader is not None and svc.incoming.reader.connected:
        assert loop.time() < deadline, "the reader never noticed the server going away"
        await asyncio.sleep(0.05)
    dovecot.start()
    dovecot.deliver((CORPUS / "reply_gmail.eml").read_bytes(), folder=folder)
    deadline = loop.time() + 60
    while len(await svc.emails(direction="in")) < 2:
        assert loop.time() < deadline, "the reader did not reconnect"
        await asyncio.sleep(0.05)
    await svc.incoming.stop()
    assert len(await svc.emails(direction="in")) == 2
