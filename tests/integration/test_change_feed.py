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
        seen_before = max(e.id for e in events)
        clock.advance(7 * 3600)  # six quiet hours and more: the purge empties the table
        await writer.feed.purge()
        await writer.post(
            author="ann@example.com", text="after", item_number=1, kind=ConversationKind.INTERNAL
        )
        events.clear()
        await reader.feed.read_now()
        assert [e.kind for e in events if e.kind == "message"] == ["message"]
        assert min(e.id for e in events) > seen_before
    finally:
        await reader.close()
        await writer.close()
