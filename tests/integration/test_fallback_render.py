"""The scheduler renders with no transaction open (E3, E6): a slow or broken template never
holds the database's write lock, never blocks other emails, and what changed while it rendered
is re-checked before anything is written."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import tzinfo
from pathlib import Path

import pytest
from sqlalchemy import select

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.domain.email_plan import NotificationEmail
from services.domain.model import DeliveryState, EmailStatus
from services.fallback import FallbackScheduler
from services.store.db import DB_FILENAME
from services.store.models import Delivery
from services.templates import TemplateError, TemplateRenderer
from tests.support.databases import sqlite_only
from tests.support.world import World, open_service, seed


class HookedRenderer(TemplateRenderer):
    """The default templates, with a test's hook run inside each render."""

    def __init__(self, hook: Callable[[NotificationEmail], None]) -> None:
        super().__init__()
        self._hook = hook

    def render_notification(
        self, email: NotificationEmail, *, tz: tzinfo | None = None
    ) -> tuple[str, str]:
        self._hook(email)
        return super().render_notification(email, tz=tz)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(database_url: str, clock: ManualClock) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


def scheduler(svc: Service, clock: ManualClock, renderer: TemplateRenderer) -> FallbackScheduler:
    return FallbackScheduler(
        svc.db,
        clock=clock,
        identity=svc.mail_identity,
        renderer=lambda: renderer,
        on_queued=lambda: None,
    )


async def post_and_decide(
    svc: Service, world: World, clock: ManualClock, hook: Callable[[NotificationEmail], None]
) -> None:
    """Ann writes to the customer; when it is due, the scheduler renders with `hook` inside."""
    await svc.post(
        author="ann@example.com",
        text="hello",
        item_number=world.item,
        kind=ConversationKind.EXTERNAL,
    )
    clock.advance(61)
    await scheduler(svc, clock, HookedRenderer(hook)).run_once()


def other_writer(tmp_path: Path) -> sqlite3.Connection:
    """Another program writing to the same file, which will not wait for a lock."""
    return sqlite3.connect(tmp_path / DB_FILENAME, timeout=0, isolation_level=None)


@sqlite_only  # another sqlite3 connection on the file
async def test_e6_no_write_lock_is_held_while_a_template_renders(
    svc: Service, world: World, clock: ManualClock, tmp_path: Path
) -> None:
    """Another writer commits while the scheduler renders: it never sees "database is locked"."""
    writes: list[str] = []

    def write_meanwhile(email: NotificationEmail) -> None:
        with other_writer(tmp_path) as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES (?, 'x')", (email.to_addr,))
        writes.append(email.to_addr)

    await post_and_decide(svc, world, clock, write_meanwhile)

    assert len(writes) == 2  # Bob and Carl
    queued = [e for e in await svc.emails() if e.kind == "notification"]
    assert {e.status for e in queued} == {EmailStatus.QUEUED}
    assert {e.to_addrs for e in queued} == {("bob@example.com",), ("carl@customer.org",)}


@sqlite_only  # another sqlite3 connection on the file
async def test_e3_seen_while_rendering_is_rechecked_before_the_write(
    svc: Service, world: World, clock: ManualClock, tmp_path: Path
) -> None:
    """Bob sees the message (another process) while his email renders: no email is queued."""

    def bob_sees_it(email: NotificationEmail) -> None:
        if "bob@" in email.to_addr:
            with other_writer(tmp_path) as conn:
                conn.execute(
                    "UPDATE deliveries SET state = 'seen', seen_at = '2026-01-05 09:01:00' "
                    "WHERE recipient_id = ?",
                    (world.bob,),
                )

    await post_and_decide(svc, world, clock, bob_sees_it)

    log = [e for e in await svc.emails() if e.kind == "notification"]
    assert [e.to_addrs for e in log] == [("carl@customer.org",)]
    rows = await svc.db.read(
        lambda tx: list(tx.conn.execute(select(Delivery.recipient_id, Delivery.state)))
    )
    states = dict(rows)
    assert states == {world.bob: DeliveryState.SEEN, world.carl: DeliveryState.EMAILED}


async def test_e6_a_template_that_fails_sends_nothing_says_why_and_blocks_no_one(
    svc: Service, world: World, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def fail_for_bob(email: NotificationEmail) -> None:
        if "bob@" in email.to_addr:
            raise TemplateError("new_message.txt, line 3: division by zero")

    with caplog.at_level(logging.WARNING, logger="services.fallback"):
        await post_and_decide(svc, world, clock, fail_for_bob)

    log = {e.to_addrs: e for e in await svc.emails() if e.kind == "notification"}
    assert log[("carl@customer.org",)].status == EmailStatus.QUEUED
    failed = log[("bob@example.com",)]
    assert failed.status == EmailStatus.FAILED
    assert failed.reason is not None and "division by zero" in failed.reason
    assert any("division by zero" in r.getMessage() for r in caplog.records)
    # Under the message, Bob's line says the email failed and why (E10).
    [row] = await svc.messages(conversation_id=2, viewer_id=world.ann)
    bob = next(e for e in row.status.emailed if e.email == "bob@example.com")
    assert bob.status == EmailStatus.FAILED
    assert bob.detail is not None and "division by zero" in bob.detail
    # It is not tried again on the next pass.
    clock.advance(120)
    await scheduler(svc, clock, HookedRenderer(fail_for_bob)).run_once()
    assert len([e for e in await svc.emails() if e.kind == "notification"]) == 2


async def test_e1_due_times_a_few_ms_apart_are_decided_in_one_run(
    svc: Service, world: World, clock: ManualClock
) -> None:
    """A burst of posts falls due a few ms apart: the scheduler looks again a little later,
    deciding them together, never earlier than their due time (E1)."""
    await svc.post(
        author="ann@example.com", text="one", item_number=1, kind=ConversationKind.INTERNAL
    )
    clock.advance(0.005)
    await svc.post(
        author="ann@example.com", text="two", item_number=1, kind=ConversationKind.EXTERNAL
    )
    clock.advance(59.995)
    look_again = await svc.run_scheduler_once()
    assert look_again is not None
    assert (look_again - clock.now()).total_seconds() == pytest.approx(0.2)
    clock.advance(0.2)
    await svc.run_scheduler_once()
    assert len([e for e in await svc.emails() if e.kind == "notification"]) == 3
