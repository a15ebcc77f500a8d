"""D8: the shipped migrations build exactly the models' schema, and start-up knows their head."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from services.store.db import _alembic_config, _upgrade, head_revision
from services.store.models import Base


def test_d8_head_revision_without_alembic_matches_alembic(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()
    engine.dispose()
    assert head_revision() == head


def test_d8_migrations_build_the_models_schema_with_nothing_missing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        _upgrade(conn)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_t1_upgrading_keeps_change_ids_climbing_after_the_table_is_emptied(
    tmp_path: Path,
) -> None:
    """T1: a database from before AUTOINCREMENT keeps its changes, and once they are all
    purged the next id is still past every id a running process may have seen."""
    from alembic import command

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0003")
        for n in range(5):
            conn.exec_driver_sql(
                "INSERT INTO changes (at, kind) VALUES ('2026-01-01 00:00:00', ?)", (f"k{n}",)
            )
    with engine.begin() as conn:
        _upgrade(conn)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT max(id), count(*) FROM changes").one() == (5, 5)
        conn.exec_driver_sql("DELETE FROM changes")
        conn.exec_driver_sql("INSERT INTO changes (at, kind) VALUES ('2026-01-02 00:00:00', 'x')")
        assert conn.exec_driver_sql("SELECT id FROM changes").scalar_one() == 6
    engine.dispose()
