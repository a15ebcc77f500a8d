"""The desktop's first window on plain sqlite3 (issue 9, start-up): the same rows and counts as
through the whole service, only where it is safe, and no write lost while the rest opens.

SQLite only: the first window's fast path is for a local file (PostgreSQL opens whole).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.api import (
    ChangeEvent,
    ConversationKind,
    Inbox,
    ManualClock,
    NotFoundError,
    PersonKind,
    Service,
    StoreError,
)
from services.first_window import FirstWindow
from services.store.window_sql import HEAD_REVISION

ANN = "ann@example.com"
BOB = "bob@example.com"
CUSTOMER = "carol@customer.example"
DEADLINE_S = 60


async def _workspace(data: Path) -> dict[str, int]:
    """Users, a customer, items with internal and external posts, a direct conversation,
    seen marks, personal settings (a delay, do not disturb hours): what the window shows."""
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    service = await Service.open(data_dir=data, clock=clock)
    try:
        ann = await service.add_person(email=ANN, name="Ann Agent", is_admin=True)
        bob = await service.add_person(email=BOB, name="Bob Agent")
        await service.add_person(email=CUSTOMER, name="Carol", kind=PersonKind.CUSTOMER)
        for n in range(1, 5):
            item = await service.create_item(title=f"Printer {n} on fire", followers=[ANN, BOB])
            for k in range(3):
                clock.advance(60)
                await service.post(
                    author=BOB if k % 2 == 0 else ANN,
                    text=f"internal {n}.{k}",
                    item_number=item.number,
                    kind=ConversationKind.INTERNAL,
                )
            clock.advance(60)
            posted = await service.post(
                author=ANN,
                text=f"to the customer {n}",
                item_number=item.number,
                kind=ConversationKind.EXTERNAL,
            )
            if n % 2:
                await service.mark_seen(person_id=bob.id, message_ids=[posted.message_id])
        direct = await service.direct_conversation(a=ANN, b=BOB)
        clock.advance(60)
        said = await service.post(author=BOB, text="lunch?", conversation_id=direct)
        await service.mark_seen(person_id=ann.id, message_ids=[said.message_id])
        clock.advance(60)
        await service.post(author=BOB, text="now?", conversation_id=direct)
        await service.set_notification_settings(
            person_id=ann.id,
            settings=replace(
                ann.settings,
                delay_s=120,
                dnd_until=clock.now() + timedelta(hours=1),
                dnd_weekly=((0, 9 * 60, 10 * 60),),
            ),
        )
        await service.set_config("unseen_delay_s", "300")
        return {"ann": ann.id, "bob": bob.id, "direct": direct}
    finally:
        await service.close()


async def _first_window(service: Service, email: str) -> object:
    """What the desktop reads for its first window, and a little more (every conversation)."""
    me = await service.person(email)
    pages = {}
    for name, inbox in (("internal", Inbox.INTERNAL), ("external", Inbox.EXTERNAL)):
        pages[name] = await service.open_conversations(person_id=me.id, inbox=inbox)
        pages[name + "-top"] = await service.open_conversations(
            person_id=me.id, inbox=inbox, limit=1
        )
        pages[name + "-2nd"] = await service.open_conversations(
            person_id=me.id, inbox=inbox, limit=2, offset=1
        )
    conversations = {}
    for row in pages["internal"] + pages["external"]:
        conversations[row.id] = (
            await service.conversation(row.id),
            await service.messages(conversation_id=row.id, viewer_id=me.id),
            await service.messages(conversation_id=row.id, viewer_id=me.id, limit=1),
        )
        ids = [m.id for m in conversations[row.id][1]]
        conversations[row.id] += (
            await service.messages(conversation_id=row.id, viewer_id=me.id, message_ids=ids),
            await service.open_conversations(
                person_id=me.id, inbox=Inbox.INTERNAL + Inbox.EXTERNAL, conversation_ids=[row.id]
            ),
        )
    return (
        me,
        await service.person_by_id(me.id),
        await service.unseen_counts(person_id=me.id),
        pages,
        conversations,
    )


async def test_first_window_shows_what_the_whole_service_shows(tmp_path: Path) -> None:
    """Issue 9: the first window read on sqlite3 with the SQL compiled ahead gives the very
    rows and counts the whole service gives (types included: aware datetimes, bools, JSON)."""
    data = tmp_path / "data"
    await _workspace(data)
    whole = await Service.open(data_dir=data, check_file=False)
    first = await Service.open(data_dir=data, check_file=False, first_window=True)
    try:
        assert first._first is not None  # the fast path was taken
        for email in (ANN, BOB):
            expected = await _first_window(whole, email)
            assert await _first_window(first, email) == expected
        with pytest.raises(NotFoundError):
            await first.person("nobody@example.com")
        assert first._first is not None  # reads alone never opened the rest
    finally:
        await first.close()
        await whole.close()


async def test_first_window_only_on_a_file_at_the_current_schema(tmp_path: Path) -> None:
    """A file that needs a migration, a file that is not there, a damaged one, or a database
    URL: the whole open, as before (its migration and checks run first)."""
    data = tmp_path / "data"
    new = await Service.open(data_dir=data, first_window=True, check_file=False)
    try:
        assert new._first is None  # no file yet: created, migrated, whole
    finally:
        await new.close()
    assert await FirstWindow.open(data) is not None
    with sqlite3.connect(data / "deskbell.db") as con:
        con.execute("UPDATE alembic_version SET version_num = '0008'")
    assert await FirstWindow.open(data) is None  # it needs a migration: the whole open first
    with sqlite3.connect(data / "deskbell.db") as con:
        con.execute("UPDATE alembic_version SET version_num = ?", (HEAD_REVISION,))
    checked = await Service.open(data_dir=data, first_window=True, check_file=True)
    try:
        assert checked._first is None  # the check comes first: no shortcut around it
    finally:
        await checked.close()


async def test_writes_right_after_the_first_window_wait_for_the_service(tmp_path: Path) -> None:
    """Issue 9: a post and a seen mark made before the rest of the service is open wait for
    it and are then made, once; another process's post in between reaches the feed."""
    data = tmp_path / "data"
    ids = await _workspace(data)
    service = await Service.open(data_dir=data, check_file=False, first_window=True)
    other = await Service.open(data_dir=data, check_file=False)
    events: list[ChangeEvent] = []
    arrived = asyncio.Event()

    def listen(batch: object) -> None:
        events.extend(batch)  # type: ignore[arg-type]
        arrived.set()

    try:
        assert service._first is not None
        service.subscribe(listen)
        await service.start(mail=False)  # the feed starts once the rest is open
        counts = await service.unseen_counts(person_id=ids["ann"])
        # Another process writes after the first window read its page.
        theirs = await other.post(author=BOB, text="meanwhile", conversation_id=ids["direct"])
        posting = asyncio.create_task(
            service.post(author=ANN, text="right away", conversation_id=ids["direct"])
        )
        seeing = asyncio.create_task(
            service.mark_seen(person_id=ids["ann"], message_ids=[theirs.message_id])
        )
        await asyncio.sleep(0)
        assert not posting.done()
        await asyncio.wait_for(service.open_rest(), DEADLINE_S)
        mine = await asyncio.wait_for(posting, DEADLINE_S)
        await asyncio.wait_for(seeing, DEADLINE_S)
        rows = await other.messages(conversation_id=ids["direct"], viewer_id=ids["ann"])
        assert [r.text for r in rows].count("right away") == 1
        assert rows[-1].id == mine.message_id
        assert not next(r for r in rows if r.id == theirs.message_id).unseen_by_viewer
        await asyncio.wait_for(arrived.wait(), DEADLINE_S)
        assert any(e.conversation_id == ids["direct"] and e.kind == "message" for e in events)
        assert (await service.unseen_counts(person_id=ids["ann"])).total == counts.total
    finally:
        await service.close()
        await other.close()


async def test_an_operation_before_the_window_opens_the_rest_itself(tmp_path: Path) -> None:
    """A dialog before the window (who are you?) needs more than the first page: the service
    opens the rest for it rather than wait for a window that is not there yet."""
    data = tmp_path / "data"
    await _workspace(data)
    service = await Service.open(data_dir=data, check_file=False, first_window=True)
    try:
        users = await asyncio.wait_for(service.people(kind=PersonKind.USER), DEADLINE_S)
        assert {u.email for u in users} == {ANN, BOB}
        assert service._first is None
        await service.open_rest()  # nothing left to do
    finally:
        await service.close()


async def test_the_rest_failing_to_open_is_said_to_waiting_writes(tmp_path: Path) -> None:
    """D8: a file found damaged behind the first window (moved aside by the open): the
    waiting write fails with the store's error, it does not hang, and is not made elsewhere."""
    data = tmp_path / "data"
    await _workspace(data)
    service = await Service.open(data_dir=data, check_file=False, first_window=True)
    (data / "deskbell.db").write_bytes(b"not a database at all" * 200)
    posting = asyncio.create_task(
        service.post(author=ANN, text="lost?", item_number=1, kind=ConversationKind.INTERNAL)
    )
    with pytest.raises(StoreError):
        await asyncio.wait_for(service.open_rest(), DEADLINE_S)
    with pytest.raises(StoreError):
        await asyncio.wait_for(posting, DEADLINE_S)
    await service.close()
