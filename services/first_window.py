"""The desktop's first window on plain `sqlite3`, before SQLAlchemy is imported (issue 9).

SQLAlchemy, the models and the rest of the service cost more to import than the window costs
to build; the first window needs only a few reads: who is signed in, the unseen counts, a page
of each inbox, the newest conversation. `FirstWindow` runs them (`services.window_reads`) with
the SQL compiled ahead from their Core statements (`services/store/window_sql.py`), with the
same result types, while the rest of the service opens behind the shown window.

It is used only where it is safe: a local SQLite file already at the schema revision this code
knows (`HEAD_REVISION`). A file that needs a migration, that is not there yet, or that cannot
be read takes the whole open first, as does PostgreSQL. Each read is one short transaction on
its own connection, in a worker thread: the Qt thread never waits on the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from services import window_reads
from services.config import KEYS, usable_settings
from services.domain.model import ConversationKind
from services.store.window_sql import DB_FILENAME, HEAD_REVISION, STATEMENTS
from services.views import ConversationInfo, ConversationRow, MessageRow, PersonInfo, UnseenCounts

__all__ = ["FirstWindow", "SqliteReads"]

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 10_000  # as the service's own connections (services/store/db.py)
# Text that is not valid UTF-8 reads with U+FFFD, as through the service (database.decode_text).
_decode_text = functools.partial(str, encoding="utf-8", errors="replace")
_EXPANDING = "__[POSTCOMPILE_{}]"


def _utc(value: Any) -> datetime | None:
    # SQLAlchemy stores naive UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'; UtcDateTime makes it aware.
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _json(value: Any) -> Any:
    return None if value is None else json.loads(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {"utc": _utc, "bool": _bool, "json": _json}


class SqliteReads:
    """`window_reads.Reads` on a `sqlite3` connection, with the stored SQL."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, key: str, params: Mapping[str, Any]) -> list[Any]:
        sql, names, literals, converters = STATEMENTS[key]
        values: list[Any] = []
        for name in names:
            if name in literals:
                values.append(literals[name])
                continue
            value = params[name]
            marker = _EXPANDING.format(name)
            if marker in sql:  # an IN list: one placeholder per value, as SQLAlchemy expands it
                items: Sequence[Any] = value
                if not items:
                    raise ValueError(f"{key}: an empty list for {name!r}")  # callers skip those
                sql = sql.replace(marker, ", ".join("?" * len(items)), 1)
                values.extend(items)
            else:
                values.append(value)
        rows = self._conn.execute(sql, values).fetchall()
        used = [(i, _CONVERTERS[c]) for i, c in enumerate(converters) if c is not None]
        if not used:
            return rows
        out = []
        for row in rows:
            cells = list(row)
            for i, convert in used:
                cells[i] = convert(cells[i])
            out.append(tuple(cells))
        return out


def _connect(path: Path) -> sqlite3.Connection:
    # mode=rw: never create a file (a missing one takes the whole open, which makes it).
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, check_same_thread=False)
    conn.text_factory = _decode_text
    conn.isolation_level = None  # the transactions below are explicit
    conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return conn


class FirstWindow:
    """The window's first-page reads on a SQLite file at the current schema revision."""

    def __init__(self, path: Path, *, position: int, default_delay_s: int) -> None:
        self.path = path
        # The change feed's position when the first read began: the feed, started once the
        # service is open, delivers every change after it, so nothing between is missed.
        self.position = position
        self._default_delay_s = default_delay_s

    @classmethod
    async def open(cls, data_dir: Path) -> FirstWindow | None:
        """The reader of the data folder's file, or None where the first window must wait for
        the whole open: no file, a schema revision other than `HEAD_REVISION`, a file SQLite
        cannot read."""
        return await asyncio.to_thread(cls._open, data_dir / DB_FILENAME)

    @classmethod
    def _open(cls, path: Path) -> FirstWindow | None:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        try:
            with contextlib.closing(_connect(path)) as conn:
                conn.execute("BEGIN")
                found = conn.execute(
                    "SELECT count(*) FROM sqlite_master"
                    " WHERE type='table' AND name='alembic_version'"
                ).fetchone()[0]
                if not found:
                    return None
                versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
                if versions != [HEAD_REVISION]:
                    return None
                reads = SqliteReads(conn)
                rows = reads.run("last_position", {})
                settings = dict(reads.run("settings", {}))
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            return None  # damaged, locked for long, unreadable: the whole open says what
        usable, _refused = usable_settings(settings)
        delay = usable.get("unseen_delay_s", KEYS["unseen_delay_s"].default)
        return cls(path, position=int(rows[0][0]) if rows else 0, default_delay_s=int(delay))

    async def _read(self, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._unit, work, *args, **kwargs)

    def _unit(self, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """One read transaction (one snapshot of the file) on a connection of its own."""
        with contextlib.closing(_connect(self.path)) as conn:
            conn.execute("BEGIN")
            try:
                return work(SqliteReads(conn), *args, **kwargs)
            finally:
                conn.execute("ROLLBACK")

    async def person(self, email: str) -> PersonInfo:
        return await self._read(
            window_reads.person_by_email, email, default_delay_s=self._default_delay_s
        )

    async def person_by_id(self, person_id: int) -> PersonInfo:
        return await self._read(
            window_reads.person_by_id, person_id, default_delay_s=self._default_delay_s
        )

    async def unseen_counts(self, *, person_id: int) -> UnseenCounts:
        return await self._read(window_reads.unseen_counts, person_id)

    async def open_conversations(
        self,
        *,
        person_id: int,
        inbox: Sequence[ConversationKind],
        limit: int,
        offset: int,
        conversation_ids: Sequence[int] | None,
    ) -> list[ConversationRow]:
        return await self._read(
            window_reads.open_conversations,
            person_id=person_id,
            inbox=inbox,
            limit=limit,
            offset=offset,
            conversation_ids=conversation_ids,
        )

    async def conversation(
        self, conversation_id: int, *, viewer_id: int | None = None
    ) -> ConversationInfo:
        return await self._read(
            window_reads.conversation_info,
            conversation_id,
            default_delay_s=self._default_delay_s,
            viewer_id=viewer_id,
        )

    async def messages(
        self,
        *,
        conversation_id: int,
        viewer_id: int,
        before_id: int | None,
        limit: int,
        message_ids: Sequence[int] | None,
    ) -> list[MessageRow]:
        return await self._read(
            window_reads.messages,
            conversation_id=conversation_id,
            viewer_id=viewer_id,
            default_delay_s=self._default_delay_s,
            before_id=before_id,
            limit=limit,
            message_ids=message_ids,
        )
