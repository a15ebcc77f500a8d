"""Batched reading (I1, I7) against a real Dovecot: one FETCH per batch, and the service's
batches commit their mails with the cursor, so nothing is taken twice or lost."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from services import operations
from services.api import Service
from services.clock import ManualClock
from services.incoming.imap import ImapMessage, ImapPosition, ImapReader, MemoryCursor
from services.incoming.router import IncomingMail, MailPolicy
from services.store.database import Tx
from services.store.models import Conversation, Email, ImapCursor, Item, Message, Person
from tests.integration.test_imap_reader import Collector, mail, settings_for
from tests.support.dovecot import DovecotServer
from tests.support.world import open_service

_folders = itertools.count(1)


@pytest.fixture
def folder(dovecot: DovecotServer) -> str:
    name = f"Batch{next(_folders)}"
    dovecot.create_folder(name)
    return name


@pytest.fixture
async def svc(database_url: str) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=ManualClock())
    yield service
    await service.close()


async def test_i1_batches_of_two_keep_uid_order_and_skip_a_failing_mail(
    dovecot: DovecotServer, folder: str
) -> None:
    for n in range(1, 6):
        dovecot.deliver(mail(n), folder=folder)
    cursor, seen = MemoryCursor(), Collector(fail_on="mail 3")
    reader = ImapReader(settings_for(dovecot, folder), cursor=cursor, handle=seen, batch_size=2)
    try:
        assert await reader.poll_once() == 5
        assert seen.seen == [f"mail {n}" for n in range(1, 6)]
        assert cursor.positions[folder][1] == 5
        assert await reader.poll_once() == 0
    finally:
        await reader.close()


async def test_i1_a_failed_batch_leaves_the_cursor_and_is_read_again(
    dovecot: DovecotServer, folder: str
) -> None:
    for n in range(1, 4):
        dovecot.deliver(mail(n), folder=folder)
    cursor = MemoryCursor()
    calls: list[list[int]] = []

    async def handle_batch(messages: Sequence[ImapMessage], end: ImapPosition) -> None:
        calls.append([m.uid for m in messages])
        if len(calls) == 1:
            raise RuntimeError("the database is locked")  # nothing of the batch committed
        await cursor.save(end.folder, end.uidvalidity, end.uid)

    reader = ImapReader(settings_for(dovecot, folder), cursor=cursor, handle_batch=handle_batch)
    try:
        with pytest.raises(RuntimeError):
            await reader.poll_once()
        assert folder not in cursor.positions
        assert await reader.poll_once() == 3
        assert calls == [[1, 2, 3], [1, 2, 3]]
        assert cursor.positions[folder][1] == 3
    finally:
        await reader.close()


def incoming_failing_on(
    svc: Service, monkeypatch: pytest.MonkeyPatch, title: str, error: Exception
) -> IncomingMail:
    """The service's incoming side, whose automations raise `error` for an item `title`."""
    item_created = operations.item_created

    def failing(tx: Tx, ctx: operations.Context, item_id: int) -> None:
        item = tx.session.get(Item, item_id)
        if item is not None and item.title == title:
            raise error
        item_created(tx, ctx, item_id)

    monkeypatch.setattr(operations, "item_created", failing)
    return IncomingMail(
        db=svc.db,
        clock=svc.clock,
        secrets=svc.secrets,
        config=svc.config,
        policy=lambda: MailPolicy(
            own_address="support@deskbell.test", token_key=b"k" * 32, create_items=True
        ),
        context=svc._parts.context,
        on_written=lambda: None,
    )


async def test_i7_one_broken_mail_in_a_batch_is_logged_and_the_others_land_once(
    svc: Service, dovecot: DovecotServer, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mail whose processing raises rolls its batch back; the batch is redone one by one."""
    incoming = incoming_failing_on(svc, monkeypatch, "mail 2", RuntimeError("an automation bug"))
    for n in range(1, 4):
        dovecot.deliver(mail(n), folder=folder)
    reader = incoming.reader_for(settings_for(dovecot, folder))
    try:
        assert await reader.poll_once() == 3
        assert await reader.poll_once() == 0  # nothing taken twice
    finally:
        await reader.close()

    def column(tx: Tx, column: Any, *, order: Any = None) -> list[Any]:
        return list(tx.conn.execute(select(column).order_by(order)).scalars())

    rows = await svc.db.read(
        lambda tx: list(
            tx.conn.execute(select(Email.subject, Email.action, Email.reason).order_by(Email.id))
        )
    )
    [position] = await svc.db.read(column, ImapCursor.last_uid)
    items = await svc.db.read(column, Item.title, order=Item.id)
    messages = await svc.db.read(column, Message.text)
    people = await svc.db.read(column, Person.email)
    conversations = await svc.db.read(column, Conversation.id)
    assert [r.subject for r in rows] == ["mail 1", "mail 2", "mail 3"]
    assert [r.action for r in rows] == ["created #1", "ignored", "created #2"]
    assert "an automation bug" in (rows[1].reason or "")
    assert items == ["mail 1", "mail 3"]
    assert sorted(messages) == ["body 1", "body 3"]
    assert people == ["carl@example.org"]  # the rolled-back batch left nothing behind
    assert len(conversations) == 4
    assert position == 3
