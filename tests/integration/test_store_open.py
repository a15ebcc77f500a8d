"""Opening the store (D8): a corrupt file is moved aside, an older schema is backed up and
migrated, the data folder comes from --data-dir or DESKBELL_DATA_DIR."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from app import cli, paths
from services.api import Service
from services.clock import ManualClock
from services.store.db import DB_FILENAME, _alembic_config

GARBAGE = b"this is not SQLite at all \x00\xff" * 200


def _version(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0])


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


def _head() -> str:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()
    engine.dispose()
    assert head is not None
    return head


async def test_d8_corrupt_database_is_moved_aside_with_a_notice_and_start_is_empty(
    tmp_path: Path,
) -> None:
    db = tmp_path / DB_FILENAME
    db.write_bytes(GARBAGE)
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        assert service.notice is not None
        assert "integrity check" in service.notice
        assert "moved" in service.notice
        assert await service.people() == []
        await service.add_person(email="ann@example.com", name="Ann")  # it really works
        assert [p.email for p in await service.people()] == ["ann@example.com"]
    finally:
        await service.close()
    [aside] = _files(tmp_path, f"{DB_FILENAME}.corrupt-*")
    assert aside.read_bytes() == GARBAGE  # nothing deleted
    assert str(aside) in service.notice
    assert _version(db) == _head()


async def test_d8_a_second_start_after_the_repair_has_no_notice(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_bytes(GARBAGE)
    await (await Service.open(data_dir=tmp_path, clock=ManualClock())).close()
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        assert service.notice is None  # not a crash loop, not a notice loop
    finally:
        await service.close()
    assert len(_files(tmp_path, f"{DB_FILENAME}.corrupt-*")) == 1


async def test_d8_older_schema_is_backed_up_then_migrated_keeping_the_data(tmp_path: Path) -> None:
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    await service.add_person(email="ann@example.com", name="Ann")
    await service.close()
    db = tmp_path / DB_FILENAME
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "-1")
    engine.dispose()
    older = _version(db)
    assert older != _head()
    assert (_files(tmp_path, f"{DB_FILENAME}.backup-*")) == []

    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        assert [p.email for p in await service.people()] == ["ann@example.com"]
    finally:
        await service.close()
    [backup] = _files(tmp_path, f"{DB_FILENAME}.backup-*")
    assert _version(backup) == older  # the copy is of the database before the migration
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT email FROM persons").fetchall() == [("ann@example.com",)]
    assert _version(db) == _head()


async def test_d8_no_backup_when_the_schema_is_current(tmp_path: Path) -> None:
    for _ in range(2):
        await (await Service.open(data_dir=tmp_path, clock=ManualClock())).close()
    assert (_files(tmp_path, f"{DB_FILENAME}.backup-*")) == []


def test_d8_data_dir_from_the_flag_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flag, env = tmp_path / "flag", tmp_path / "env"
    monkeypatch.setenv("DESKBELL_DATA_DIR", str(env))
    assert paths.data_dir(str(flag)) == flag
    assert paths.data_dir() == env
    assert cli.main(["--data-dir", str(flag), "person", "add", "a@example.com", "--name", "A"]) == 0
    assert cli.main(["person", "add", "b@example.com", "--name", "B"]) == 0
    capsys.readouterr()
    for folder, email in ((flag, "a@example.com"), (env, "b@example.com")):
        with sqlite3.connect(folder / DB_FILENAME) as conn:
            assert conn.execute("SELECT email FROM persons").fetchall() == [(email,)]
    monkeypatch.delenv("DESKBELL_DATA_DIR")
    assert paths.data_dir(None) != env  # the per-OS folder
