"""Storage faults through the service API the desktop uses (D8, issue 8 items 9 and 10).

Real faults on a real SQLite file: a second connection or process holding it locked, a busy
WAL writer, a full disk (SQLite's max_page_count, and a small tmpfs when root), a read-only
bind mount, a damaged page, invalid UTF-8 inside a row. Each gives one typed error of
`services.errors` with a one-line message, keeps what was written, and works again once the
cause is gone. A locked or busy database is never called damaged or moved aside.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
)
from services.store import db as store_db
from services.store.database import Tx
from services.store.db import DB_FILENAME
from services.store.rescue import rescue_database
from tests.support.storage import (
    damage_page,
    exclusive_lock_in_process,
    fill_disk,
    held_lock,
    mounted_tmpfs,
    page_of,
    read_only_bind,
)
from tests.support.world import seed

ANN = "ann@example.com"
BOB = "bob@example.com"
CARL = "carl@customer.org"


@pytest.fixture(autouse=True)
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock outlasts SQLite's busy timeout here in 1 s instead of 10."""
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 1.0)


async def _seeded(folder: Path) -> None:
    service = await Service.open(data_dir=folder, clock=ManualClock())
    try:
        await seed(service)
        await service.post(author=ANN, text="kept", item_number=1, kind=ConversationKind.INTERNAL)
    finally:
        await service.close()


async def _texts(folder: Path) -> list[str]:
    service = await Service.open(data_dir=folder, clock=ManualClock())
    try:
        assert service.notice is None
        return [m.text for _, m in await service.item_messages(1)]
    finally:
        await service.close()


def _aside(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{DB_FILENAME}.corrupt-*"))


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# --- item 9: locked and busy are never damage ---------------------------------------------


@contextlib.contextmanager
def _locked_by(how: str, db: Path) -> Iterator[object]:
    if how == "another process":
        with held_lock(db) as proc:
            yield proc
    else:
        with exclusive_lock_in_process(db) as conn:
            yield conn


@pytest.mark.parametrize("how", ["another process", "a second connection"])
async def test_d8_a_locked_database_is_never_moved_aside_and_opens_once_released(
    tmp_path: Path, how: str
) -> None:
    await _seeded(tmp_path)
    db = tmp_path / DB_FILENAME
    with _locked_by(how, db):
        with pytest.raises(StoreBusyError) as caught:
            await Service.open(data_dir=tmp_path, clock=ManualClock())
        message = _one_line(caught.value)
        assert "locked" in message and "damaged" not in message
        assert str(db) in message
        assert _aside(tmp_path) == []
    assert _aside(tmp_path) == []
    assert await _texts(tmp_path) == ["kept"]


async def test_d8_a_busy_wal_writer_delays_writes_and_never_looks_like_damage(
    tmp_path: Path,
) -> None:
    await _seeded(tmp_path)
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        with held_lock(tmp_path / DB_FILENAME, locking_mode="NORMAL", begin="IMMEDIATE"):
            assert next(p.email for p in await service.people()) == ANN  # WAL: reads go on
            with pytest.raises(StoreBusyError) as caught:
                await service.post(
                    author=ANN, text="waits", item_number=1, kind=ConversationKind.INTERNAL
                )
            assert "locked" in _one_line(caught.value)
        await service.post(author=ANN, text="later", item_number=1, kind=ConversationKind.INTERNAL)
    finally:
        await service.close()
    assert _aside(tmp_path) == []
    assert await _texts(tmp_path) == ["kept", "later"]


async def test_d8_an_open_that_meets_a_short_lock_waits_for_it(tmp_path: Path) -> None:
    await _seeded(tmp_path)
    with held_lock(tmp_path / DB_FILENAME, locking_mode="NORMAL", begin="IMMEDIATE"):
        opening = asyncio.create_task(Service.open(data_dir=tmp_path, clock=ManualClock()))
        await asyncio.sleep(0)  # the open starts and meets the lock (or finds it gone: fine)
    service = await opening
    try:
        assert service.notice is None
    finally:
        await service.close()
    assert _aside(tmp_path) == []


# --- damaged pages --------------------------------------------------------------------------


async def test_d8_a_damaged_page_moves_the_file_aside_and_says_how_to_get_it_back(
    tmp_path: Path,
) -> None:
    await _seeded(tmp_path)
    db = tmp_path / DB_FILENAME
    damage_page(db, page_of(db, "messages", kind="leaf"))
    damaged = db.read_bytes()
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        notice = service.notice
        assert notice is not None and "\n" not in notice
        [aside] = _aside(tmp_path)
        assert str(aside) in notice and "deskbell rescue" in notice
        assert aside.read_bytes() == damaged  # nothing lost: the file is kept as it was
        await service.add_person(email="new@example.com", name="New")  # and work goes on
    finally:
        await service.close()
    # The notice's recipe gets the old data back, all but the damaged page.
    report = rescue_database(aside, now=datetime(2026, 1, 6, tzinfo=UTC))
    assert report.database == db and report.damaged_tables == ("messages",)
    assert aside.read_bytes() == damaged
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        assert service.notice is None
        assert [p.email for p in await service.people()] == [ANN, BOB, CARL]
        assert (await service.item(1)).title == "Printer on fire"
    finally:
        await service.close()
    assert report.replaced is not None
    with contextlib.closing(sqlite3.connect(report.replaced)) as conn:
        assert conn.execute("SELECT email FROM persons").fetchall() == [("new@example.com",)]


async def test_d8_rescue_refuses_while_the_database_is_in_use(tmp_path: Path) -> None:
    await _seeded(tmp_path)
    db = tmp_path / DB_FILENAME
    damage_page(db, page_of(db, "messages", kind="leaf"))
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        await service.people()
        [aside] = _aside(tmp_path)
        with pytest.raises(StoreBusyError, match="quit Deskbell"):
            rescue_database(aside, now=datetime(2026, 1, 6, tzinfo=UTC))
    finally:
        await service.close()


async def test_d8_damage_met_while_running_is_one_typed_error(tmp_path: Path) -> None:
    await _seeded(tmp_path)
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        db = tmp_path / DB_FILENAME
        damage_page(db, page_of(db, "messages", kind="leaf"))
        with pytest.raises(StoreCorruptError) as caught:
            await service.item_messages(1)
        assert "damaged" in _one_line(caught.value)
        assert next(p.email for p in await service.people()) == ANN  # other tables still read
    finally:
        await service.close()


# --- damaged rows ---------------------------------------------------------------------------


async def test_d8_invalid_utf8_inside_rows_reads_as_replacement_characters(
    tmp_path: Path,
) -> None:
    await _seeded(tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILENAME)) as conn:
        # "Hello \xff\xfe {{ recipient.name }}": two bytes that are not UTF-8
        bad = "48656c6c6f20fffe207b7b20726563697069656e742e6e616d65207d7d"
        conn.execute(
            f"UPDATE email_templates SET body_text = CAST(X'{bad}' AS TEXT)"
            " WHERE name = 'new_message'"
        )
        conn.execute("UPDATE persons SET name = CAST(X'416e6e80' AS TEXT) WHERE email = ?", (ANN,))
        conn.execute("UPDATE messages SET text = CAST(X'6b657074c3' AS TEXT)")
        conn.commit()
    clock = ManualClock()
    service = await Service.open(data_dir=tmp_path, clock=clock)
    try:
        assert (await service.person(ANN)).name == "Ann\ufffd"
        assert [m.text for _, m in await service.item_messages(1)] == ["kept\ufffd"]
        template = await service.templates.get("new_message")
        assert template.body_text.startswith("Hello \ufffd\ufffd ")
        # The damaged template still renders and the email still goes out.
        await service.post(author=ANN, text="new", item_number=1, kind=ConversationKind.INTERNAL)
        clock.advance(3600)
        await service.run_scheduler_once()
        assert any(e.kind == "notification" for e in await service.emails())
    finally:
        await service.close()


# --- a full disk ------------------------------------------------------------------------------


async def _post_until_it_fails(service: Service, text: str) -> None:
    for _ in range(100):  # the WAL may hold a few before the file must grow
        await service.post(author=ANN, text=text, item_number=1, kind=ConversationKind.INTERNAL)
    raise AssertionError("100 big messages fitted")


async def _limit_pages(service: Service, pages: int) -> None:
    """SQLite's max_page_count on the connection that writes: the file cannot grow past it."""

    def limit(tx: Tx) -> None:
        tx.conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")

    await service.db.write(limit)


async def test_d8_a_full_database_file_refuses_the_write_keeps_the_rest_and_recovers(
    tmp_path: Path,
) -> None:
    await _seeded(tmp_path)
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        with contextlib.closing(sqlite3.connect(tmp_path / DB_FILENAME)) as conn:
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        await _limit_pages(service, pages)
        big = "x" * 60_000
        with pytest.raises(StoreFullError) as caught:
            await _post_until_it_fails(service, big)
        assert "full" in _one_line(caught.value)
        before = [m.text for _, m in await service.item_messages(1)]
        assert before[0] == "kept"
        await _limit_pages(service, 1_000_000)
        await service.post(author=ANN, text="after", item_number=1, kind=ConversationKind.INTERNAL)
        assert [m.text for _, m in await service.item_messages(1)] == [*before, "after"]
    finally:
        await service.close()


async def test_d8_a_full_disk_refuses_the_write_keeps_the_rest_and_recovers(
    tmp_path: Path,
) -> None:
    with mounted_tmpfs(tmp_path / "disk", size_kib=8192) as disk:
        folder = disk / "data"
        await _seeded(folder)
        service = await Service.open(data_dir=folder, clock=ManualClock())
        try:
            filler = fill_disk(disk)
            with pytest.raises(StoreFullError) as caught:
                await _post_until_it_fails(service, "y" * 60_000)
            assert "full" in _one_line(caught.value)
            filler.unlink()
            await service.post(
                author=ANN, text="after", item_number=1, kind=ConversationKind.INTERNAL
            )
        finally:
            await service.close()
        texts = await _texts(folder)
        assert texts[0] == "kept" and texts[-1] == "after"


async def test_d8_a_full_disk_at_start_is_one_line_then_opens_once_freed(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", size_kib=8192) as disk:
        folder = disk / "data"
        await _seeded(folder)
        filler = fill_disk(disk)
        with pytest.raises(StoreFullError) as caught:
            await Service.open(data_dir=folder, clock=ManualClock())
        assert "full" in _one_line(caught.value)
        filler.unlink()
        assert await _texts(folder) == ["kept"]
        assert _aside(folder) == []


# --- read-only storage ---------------------------------------------------------------------


async def test_d8_a_read_only_mount_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    source = tmp_path / "data"
    await _seeded(source)
    with read_only_bind(source, tmp_path / "ro") as folder:
        try:
            service = await Service.open(data_dir=folder, clock=ManualClock())
        except StoreError as exc:  # WAL cannot start on read-only media without its -shm
            message = _one_line(exc)
        else:
            try:
                with pytest.raises(StoreReadOnlyError) as caught:
                    await service.add_person(email="new@example.com", name="New")
                message = _one_line(caught.value)
            finally:
                await service.close()
        assert str(folder / DB_FILENAME) in message
    assert await _texts(source) == ["kept"]
    assert _aside(source) == []
