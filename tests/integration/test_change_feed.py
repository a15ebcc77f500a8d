"""Changes written by another process reach subscribers (issue 2, T1 on SQLite).

How fast (the half-second promise) is a measurement, `bench/bench_desktop.py`, not an
assertion here: on a busy machine a test waits for the change with a generous deadline.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from services.api import ChangeEvent, ConversationKind, Service
from services.clock import ManualClock
from services.store.database import Database
from tests.support.world import seed


async def test_a_second_instance_sees_a_post(tmp_path: Path) -> None:
    writer = await Service.open(data_dir=tmp_path)
    reader = await Service.open(data_dir=tmp_path)
    try:
        await seed(writer)
        got: asyncio.Queue[float] = asyncio.Queue()

        def listener(events: list[ChangeEvent] | tuple[ChangeEvent, ...]) -> None:
            if any(e.kind == "message" for e in events):
                got.put_nowait(time.monotonic())

        reader.subscribe(listener)
        await reader.feed.start()  # the feed alone: this test is about the feed
        await writer.post(
            author="ann@example.com", text="hi", item_number=1, kind=ConversationKind.INTERNAL
        )
        await asyncio.wait_for(got.get(), timeout=60)
    finally:
        await reader.close()
        await writer.close()


async def test_a_cli_post_in_another_process_reaches_a_running_service(tmp_path: Path) -> None:
    service = await Service.open(data_dir=tmp_path)
    try:
        await seed(service)
        events: list[ChangeEvent] = []
        service.subscribe(lambda batch: events.extend(batch))
        await service.feed.start()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "--data-dir",
            str(tmp_path),
            "post",
            "1",
            "--as",
            "bob@example.com",
            "--internal",
            "from the CLI",
        )
        assert await proc.wait() == 0
        deadline = time.monotonic() + 60
        while not any(e.kind == "message" for e in events):
            assert time.monotonic() < deadline, "the change did not arrive"
            await asyncio.sleep(0.01)
        rows = await service.open_conversations(person_id=1)
        assert rows[0].last_text == "from the CLI" and rows[0].unseen == 1
    finally:
        await service.close()


async def test_t1_after_a_quiet_purge_a_running_feed_still_hears_new_changes(
    tmp_path: Path,
) -> None:
    """T1: the hourly purge may empty `changes`, yet ids are never handed out twice, so a
    process that already saw id N still hears the next change (time moved by the clock)."""
    clock = ManualClock()
    writer = await Service.open(data_dir=tmp_path, clock=clock)
    reader = await Service.open(data_dir=tmp_path, clock=clock)
    try:
        await seed(writer)
        await writer.post(
            author="ann@example.com", text="before", item_number=1, kind=ConversationKind.INTERNAL
        )
        events: list[ChangeEvent] = []
        reader.subscribe(lambda batch: events.extend(batch))
        await reader.feed.read_now()
        seen_before = max(e.position for e in events)
        clock.advance(7 * 3600)  # six quiet hours and more: the purge empties the table
        await writer.feed.purge()
        await writer.post(
            author="ann@example.com", text="after", item_number=1, kind=ConversationKind.INTERNAL
        )
        events.clear()
        await reader.feed.read_now()
        assert [e.kind for e in events if e.kind == "message"] == ["message"]
        assert min(e.position for e in events) > seen_before
    finally:
        await reader.close()
        await writer.close()


async def test_t1_a_change_committed_out_of_start_order_is_never_missed(postgres_url: str) -> None:
    """T1 (issue 9): on PostgreSQL, transaction A records a change first but commits last,
    while B starts after it: a subscriber reading between and after the commits sees both
    changes, once each, in commit order (positions come from a counter locked until commit,
    not from ids handed out at INSERT)."""
    import threading

    import psycopg

    from services.events import ChangeFeed
    from services.store.changes import record_change
    from services.store.database import Database, Tx
    from services.views import ChangeKind

    clock = ManualClock()
    db = await Database.open(postgres_url, pool_size=3)
    feed = ChangeFeed(db, clock=clock)
    events: list[ChangeEvent] = []
    feed.subscribe(lambda batch: events.extend(batch))
    paused, release = threading.Event(), threading.Event()

    def first(tx: Tx) -> None:
        record_change(tx, kind=ChangeKind.ITEM, at=clock.now(), conversation_id=1)
        tx.before_commit(lambda _tx: (paused.set(), release.wait(60)))  # after its rows

    def second(tx: Tx) -> None:
        record_change(tx, kind=ChangeKind.ITEM, at=clock.now(), conversation_id=2)

    def someone_waits_for_a_lock() -> bool:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            return bool(row and row[0])

    try:
        await feed.start()
        a = asyncio.create_task(db.write(first))
        assert await asyncio.to_thread(paused.wait, 60)
        b = asyncio.create_task(db.write(second))
        deadline = time.monotonic() + 60
        while not b.done() and not await asyncio.to_thread(someone_waits_for_a_lock):
            assert time.monotonic() < deadline, "B neither committed nor waited"
            await asyncio.sleep(0.01)
        await feed.read_now()  # between the two commits (if B could commit first)
        release.set()
        await asyncio.gather(a, b)
        await feed.read_now()
        assert sorted(e.conversation_id for e in events) == [1, 2]
        positions = [e.position for e in events]
        assert positions == sorted(positions) and len(set(positions)) == 2
    finally:
        release.set()
        await feed.stop()
        await db.close()


async def test_t1_the_feed_is_woken_by_commits_and_keeps_no_timer_while_idle(
    database: Database,
) -> None:
    """Issue 9: no poll. An idle feed has nothing scheduled on the loop; a commit (here one of
    this process's units of work) reaches its listeners without anyone poking it."""
    from services.events import ChangeFeed
    from services.store.changes import record_change
    from services.views import ChangeKind

    clock = ManualClock()
    feed = ChangeFeed(database, clock=clock)
    got: asyncio.Queue[ChangeEvent] = asyncio.Queue()
    feed.subscribe(lambda batch: [got.put_nowait(e) for e in batch])
    await feed.start()
    try:
        if sys.platform.startswith("linux"):
            loop = asyncio.get_running_loop()
            timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
            assert timers == []
        await database.write(
            lambda tx: record_change(tx, kind=ChangeKind.SEEN, at=clock.now(), person_id=7)
        )
        event = await asyncio.wait_for(got.get(), timeout=60)
        assert (event.kind, event.person_id) == (ChangeKind.SEEN, 7)
    finally:
        await feed.stop()


async def test_t1_this_process_commits_reach_the_feed_without_a_read_back(
    database: Database,
) -> None:
    """Issue 9: a change this process just committed is handed to the feed's listeners as
    written (positions and rows known to the unit of work), not read back from the database:
    one thread hop a post instead of two."""
    from services.events import ChangeFeed
    from services.store.changes import record_change
    from services.views import ChangeKind

    clock = ManualClock()
    feed = ChangeFeed(database, clock=clock)
    got: asyncio.Queue[ChangeEvent] = asyncio.Queue()
    feed.subscribe(lambda batch: [got.put_nowait(e) for e in batch])
    await feed.start()
    try:
        for person_id in range(1, 6):
            await database.write(
                lambda tx, p=person_id: record_change(
                    tx, kind=ChangeKind.SEEN, at=clock.now(), person_id=p
                )
            )
            event = await asyncio.wait_for(got.get(), timeout=60)
            assert (event.kind, event.person_id) == (ChangeKind.SEEN, person_id)
        assert feed.reads == 0
    finally:
        await feed.stop()


async def test_t1_changes_of_two_processes_committing_together_arrive_once_each_in_order(
    database_url: str,
) -> None:
    """T1: while another process commits between this process's commits, every change reaches
    this process's feed once, in position order, none missed: this process's own changes are
    handed over directly only when nothing was committed between them and the last one read."""
    from services.events import ChangeFeed
    from services.store.changes import record_change
    from services.views import ChangeKind

    clock = ManualClock()
    here, there = await Database.open(database_url), await Database.open(database_url)
    feed = ChangeFeed(here, clock=clock)
    events: list[ChangeEvent] = []
    feed.subscribe(lambda batch: events.extend(batch))
    rounds = 20
    try:
        await feed.start()
        start = feed.last_position
        for n in range(rounds):
            await asyncio.gather(
                there.write(
                    lambda tx, n=n: record_change(
                        tx, kind=ChangeKind.ITEM, at=clock.now(), conversation_id=2 * n
                    )
                ),
                here.write(
                    lambda tx, n=n: record_change(
                        tx, kind=ChangeKind.ITEM, at=clock.now(), conversation_id=2 * n + 1
                    )
                ),
            )
        deadline = time.monotonic() + 60
        while len(events) < 2 * rounds:
            assert time.monotonic() < deadline, f"{len(events)} of {2 * rounds} changes arrived"
            await asyncio.sleep(0.01)
        await feed.read_now()
        assert [e.position for e in events] == list(range(start + 1, start + 2 * rounds + 1))
        assert sorted(e.conversation_id or 0 for e in events) == list(range(2 * rounds))
    finally:
        await feed.stop()
        await here.close()
        await there.close()
