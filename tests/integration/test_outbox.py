"""The outbox against real SMTP servers and a real SQLite file (E6, E7, T2).

Each acceptance is on disk before the next email's DATA; an email in flight keeps its claim
however long the server takes; the SMTP server's trouble is logged once per change of state.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select, update

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.mail.smtp import SmtpSender
from services.store.database import Tx
from services.store.db import DB_FILENAME
from services.store.models import Email, Setting
from tests.support.databases import sqlite_only
from tests.support.smtpd import CatcherHandler, SmtpServer, free_port
from tests.support.tls import CertBundle
from tests.support.world import World, open_service, seed

FOLLOWERS = [f"agent{n}@example.com" for n in range(6)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(database_url: str, clock: ManualClock) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    await service.set_config("smtp.from", "support@deskbell.test")
    await service.set_config("smtp.security", "none")
    await service.set_config("smtp.host", "127.0.0.1")
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    world = await seed(svc, delay_s=60)
    for email in FOLLOWERS:
        await svc.add_person(email=email, name=email.split("@")[0])
        await svc.follow(number=world.item, email=email)
    return world


async def _queue(svc: Service, clock: ManualClock) -> int:
    await svc.post(
        author="ann@example.com", text="all hands", item_number=1, kind=ConversationKind.INTERNAL
    )
    clock.advance(61)
    await svc.run_scheduler_once()
    return len([e for e in await svc.emails() if e.status == EmailStatus.QUEUED])


@dataclass
class RecordWatcher(CatcherHandler):
    """At each DATA, reads the database the way another program would: how many emails this
    server accepted earlier are already recorded as sent?"""

    db: Path = field(default_factory=Path)
    unrecorded_at_data: list[int] = field(default_factory=list)
    _accepted: int = 0
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with sqlite3.connect(self.db) as conn:
            (sent,) = conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()
        with self._guard:
            self.unrecorded_at_data.append(self._accepted - sent)
        reply = await super().handle_DATA(server, session, envelope)
        with self._guard:
            self._accepted += 1
        return reply


@sqlite_only  # another sqlite3 connection on the file
async def test_e7_each_acceptance_is_on_disk_before_the_next_data(
    svc: Service, world: World, clock: ManualClock, tmp_path: Path
) -> None:
    handler = RecordWatcher(db=tmp_path / DB_FILENAME)
    async with SmtpServer(handler=handler) as server:
        await svc.set_config("smtp.port", str(server.port))
        queued = await _queue(svc, clock)
        assert queued == 1 + len(FOLLOWERS)
        await svc.outbox.flush()

    assert len(handler.messages) == queued
    assert handler.unrecorded_at_data == [0] * queued


@sqlite_only
async def test_e7_a_lost_claim_is_never_sent_by_the_old_owner(
    svc: Service, world: World, clock: ManualClock
) -> None:
    """A process that fell behind (its batch's claims ran out, another process took them) sends
    none of the emails it no longer owns.

    The lease follows the injected clock, which is the database's clock on SQLite only (on
    PostgreSQL it is the server's: test_outbox_claims proves that one)."""
    async with SmtpServer() as server:
        await svc.set_config("smtp.port", str(server.port))
        await _queue(svc, clock)
        batch = await svc.outbox.claim()
        clock.advance(int(svc.config("outbox.lease_s")) + 1)
        other = await svc.outbox.claim()  # "another process" takes the expired claims
        assert {e.id for e in other} == {e.id for e in batch}
        settings = await svc.smtp_settings()
        assert settings is not None
        async with SmtpSender(settings=settings) as sender:
            await svc.outbox.send_batch(sender, batch)
        assert server.handler.messages == []
        async with SmtpSender(settings=settings) as sender:
            await svc.outbox.send_batch(sender, other)
        assert len(server.handler.messages) == len(batch)


def _smtp_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "services.mail.outbox" and r.levelno >= logging.INFO
    ]


async def _retry_until_logged(svc: Service, clock: ManualClock, attempts: int) -> None:
    for _ in range(attempts):
        await svc.outbox.flush()
        clock.advance(31 * 60)  # past any retry delay


async def test_e6_refused_connection_is_logged_once_then_recovery_once(
    svc: Service, world: World, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    await svc.set_config("smtp.port", str(port))
    await _queue(svc, clock)
    with caplog.at_level(logging.INFO, logger="services.mail.outbox"):
        await _retry_until_logged(svc, clock, 3)
        lines = _smtp_lines(caplog)
        assert len(lines) == 1, lines
        assert "connection refused" in lines[0]
        async with SmtpServer(port=port) as server:
            await _retry_until_logged(svc, clock, 2)
            assert len(server.handler.messages) == 1 + len(FOLLOWERS)
    lines = _smtp_lines(caplog)
    assert len(lines) == 2, lines
    assert "works again" in lines[1]


@pytest.mark.parametrize(
    ("implicit_tls", "settings", "words"),
    [
        (False, {"smtp.security": "starttls", "smtp.username": "desk"}, "login refused"),
        (True, {"smtp.security": "tls"}, "certificate"),
    ],
)
async def test_e6_a_wrong_password_or_an_untrusted_certificate_is_logged_once(
    svc: Service,
    world: World,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    smtp_certificates: CertBundle,
    implicit_tls: bool,
    settings: dict[str, str],
    words: str,
) -> None:
    async with SmtpServer(
        tls=smtp_certificates, implicit_tls=implicit_tls, users={"desk": "right"}
    ) as server:
        await svc.set_config("smtp.port", str(server.port))
        for key, value in settings.items():
            await svc.set_config(key, value)
        if "smtp.username" in settings:  # trusts the server's CA, but has the wrong password
            await svc.set_config("smtp.cafile", str(smtp_certificates.cafile))
            svc.set_smtp_password("wrong")
        await _queue(svc, clock)
        with caplog.at_level(logging.INFO, logger="services.mail.outbox"):
            await _retry_until_logged(svc, clock, 3)
    lines = _smtp_lines(caplog)
    assert len(lines) == 1, lines
    assert words in lines[0]


async def _started_with_an_unusable_host(
    svc: Service, clock: ManualClock, database_url: str
) -> Service:
    """Emails queued, then a process started with an SMTP host stored before validation
    existed (refused when the settings are loaded)."""
    await _queue(svc, clock)

    def bad_host(tx: Tx) -> None:
        tx.conn.execute(
            update(Setting).where(Setting.key == "smtp.host").values(value="mail example.com")
        )

    await svc.db.write(bad_host)
    return await open_service(database_url, clock=clock)


async def test_e6_unusable_settings_are_logged_once(
    svc: Service,
    world: World,
    clock: ManualClock,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = await _started_with_an_unusable_host(svc, clock, database_url)
    try:
        with caplog.at_level(logging.INFO, logger="services.mail.outbox"):
            await _retry_until_logged(started, clock, 3)
    finally:
        await started.close()
    lines = _smtp_lines(caplog)
    assert len(lines) == 1, lines
    assert "SMTP settings cannot be used" in lines[0] and "mail example.com" in lines[0]


async def test_e6_unusable_settings_surface_once_from_the_running_outbox(
    svc: Service,
    world: World,
    clock: ManualClock,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """E6 with the outbox's own loop running: the outbox says it once, the loop says nothing
    (the outbox's failure is not a failed step, so it is not logged a second time)."""
    started = await _started_with_an_unusable_host(svc, clock, database_url)
    caplog.set_level(logging.INFO, logger="services")
    await started.start()
    try:
        async with asyncio.timeout(60):
            while not _smtp_lines(caplog):  # noqa: ASYNC110 - a polled condition, not an event
                await asyncio.sleep(0.01)
        for _ in range(3):
            clock.advance(31 * 60)
            started.outbox.wake()
            await started.outbox.flush()
    finally:
        await started.close()
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name in ("services.mail.outbox", "services.due_loop") and r.levelno >= logging.INFO
    ]
    assert len(lines) == 1, lines
    assert "SMTP settings cannot be used" in lines[0] and "mail example.com" in lines[0]


@sqlite_only
async def test_t2_an_email_claimed_elsewhere_is_a_deadline_for_this_sender(
    svc: Service, world: World, clock: ManualClock
) -> None:
    """T2, E7: the outbox sleeps until its next deadline and no other wake-up (issue 9), so
    an email another process holds (or freed when it stopped) must be one: when the claim
    runs out, this sender takes the email, at that very moment, not an instant later.

    The lease follows the injected clock, which is the database's clock on SQLite only (on
    PostgreSQL it is the server's: test_outbox_claims proves that one)."""
    queued = await _queue(svc, clock)
    held_until = clock.now() + timedelta(seconds=30)  # sooner than this sender's lease

    def claimed_elsewhere(tx: Tx) -> list[int]:
        ids = list(
            tx.conn.execute(
                select(Email.id).where(Email.status == EmailStatus.QUEUED).order_by(Email.id)
            ).scalars()
        )
        tx.conn.execute(
            update(Email)
            .where(Email.id.in_(ids))
            .values(
                status=EmailStatus.SENDING,
                claimed_by="elsewhere.example:1:0",
                claimed_until=held_until,
            )
        )
        tx.conn.execute(  # freed by a sender that stopped before starting it
            update(Email).where(Email.id == ids[-1]).values(claimed_by=None, claimed_until=None)
        )
        return ids

    ids = await svc.db.write(claimed_elsewhere)
    assert await svc.outbox.next_attempt_at() == clock.now()
    [mine] = await svc.outbox.claim()
    assert mine.id == ids[-1] and mine.claimed_until is not None

    assert await svc.outbox.next_attempt_at() == held_until
    clock.advance((held_until - clock.now()).total_seconds())
    assert len(await svc.outbox.claim()) == queued - 1
    assert await svc.outbox.next_attempt_at() == mine.claimed_until  # now the earliest claim


class TickingClock(ManualClock):
    """Time moves a little every time it is read, as it does on a real machine."""

    def now(self) -> datetime:
        self.advance(0.002)
        return super().now()


async def test_e7_claims_are_extended_once_per_step_while_time_moves(database_url: str) -> None:
    """With a clock that moves, a claim extended to cover a step still covers it: the guard
    never chases its own tail (one extension, not one per millisecond)."""
    clock = TickingClock()
    svc = await open_service(database_url, clock=clock)
    try:
        await svc.set_config("smtp.from", "support@deskbell.test")
        await svc.set_config("smtp.security", "none")
        await svc.set_config("smtp.host", "127.0.0.1")
        await seed(svc, delay_s=60)
        async with SmtpServer() as server:
            await svc.set_config("smtp.port", str(server.port))
            await _queue(svc, clock)
            async with asyncio.timeout(60):
                await svc.outbox.flush()
            assert len(server.handler.messages) == 1
    finally:
        await svc.close()
