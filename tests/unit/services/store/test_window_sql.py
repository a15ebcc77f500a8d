"""The first window's SQL is SQLAlchemy's own, compiled ahead (issue 9, start-up): the stored
text is generated from the Core statements and must match what SQLAlchemy compiles now; the
schema revision it was compiled for is the migrations' head."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, cast

from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.compiler import SQLCompiler

from services.api import Service
from services.first_window import SqliteReads
from services.store import db, window_sql
from services.store.window_statements import compiled_for_sqlite, statements


def test_stored_sql_is_what_sqlalchemy_compiles_from_the_statements() -> None:
    """Regenerate with `python -m services.store.window_statements` when this fails."""
    assert compiled_for_sqlite() == window_sql.STATEMENTS


def test_stored_revision_is_the_migrations_head() -> None:
    """A new migration makes the first window wait for the whole open until the SQL is
    generated again for it (and checked by the test above)."""
    assert db.head_revision() == window_sql.HEAD_REVISION
    assert window_sql.DB_FILENAME == db.DB_FILENAME


async def test_lists_expand_as_sqlalchemy_expands_them(tmp_path: Path) -> None:
    """An IN list gets one placeholder per value, in the text SQLAlchemy would run."""
    service = await Service.open(data_dir=tmp_path)
    await service.close()
    dialect = sqlite.dialect(paramstyle="qmark")
    ran: list[str] = []
    with contextlib.closing(sqlite3.connect(tmp_path / db.DB_FILENAME)) as conn:
        conn.set_trace_callback(ran.append)
        reads = SqliteReads(conn)
        expanding = [k for k, (sql, *_) in window_sql.STATEMENTS.items() if "POSTCOMPILE" in sql]
        assert expanding  # the messages' statuses, the authors, a direct conversation's names
        for key in expanding:
            _sql, names, literals, _types = window_sql.STATEMENTS[key]
            params: dict[str, Any] = {n: [3, 1, 2] if n == "ids" else 7 for n in names}
            ran.clear()
            reads.run(key, params)
            compiled = cast(SQLCompiler, statements()[key].statement.compile(dialect=dialect))
            state = compiled.construct_expanded_state({**params, **literals})
            expected = state.statement
            for value in [state.parameters[n] for n in state.positiontup or ()]:
                expected = expected.replace("?", repr(value), 1)
            assert ran == [expected], key
