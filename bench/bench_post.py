"""Posting through the Service vs raw sqlite3 writing the same rows (issue 2, aim >= 0.3).

The database already holds 100,000 messages (200,000 deliveries), written with raw inserts
after the Service created the schema. Then 10,000 messages are posted one by one through
`Service.post` (one transaction each, as the app does), and the same rows (message,
deliveries, the conversation's last message, a change-feed row) are written with raw sqlite3,
also one transaction per message, into a copy of the same database.

    .venv/bin/python bench/bench_post.py [--quick] [--profile]
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, report

from services.api import ConversationKind, PersonKind, Service
from services.store.db import DB_FILENAME

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@customer.org"


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]


def _copy_rows(conn: sqlite3.Connection, table: str, row_id: int) -> tuple[list[str], tuple]:
    cols = _columns(conn, table)
    row = conn.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE id = ?", (row_id,)).fetchone()
    return cols, tuple(row)


class RawWriter:
    """Writes a message the way the service does, with plain sqlite3 statements."""

    def __init__(self, conn: sqlite3.Connection, template_message: int) -> None:
        self.conn = conn
        self.m_cols, self.m_row = _copy_rows(conn, "messages", template_message)
        d_ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM deliveries WHERE message_id = ? ORDER BY id", (template_message,)
            )
        ]
        self.d_rows = [_copy_rows(conn, "deliveries", i) for i in d_ids]
        self.d_cols = self.d_rows[0][0]
        self.c_cols, self.c_row = _copy_rows(
            conn, "changes", conn.execute("SELECT max(id) FROM changes").fetchone()[0]
        )
        self.text_at = self.m_cols.index("text")
        self.msg_at = self.d_cols.index("message_id")
        self.conv_id = self.m_row[self.m_cols.index("conversation_id")]
        self.insert_m = (
            f"INSERT INTO messages ({', '.join(self.m_cols)}) "
            f"VALUES ({', '.join('?' * len(self.m_cols))})"
        )
        self.insert_d = (
            f"INSERT INTO deliveries ({', '.join(self.d_cols)}) "
            f"VALUES ({', '.join('?' * len(self.d_cols))})"
        )
        self.insert_c = (
            f"INSERT INTO changes ({', '.join(self.c_cols)}) "
            f"VALUES ({', '.join('?' * len(self.c_cols))})"
        )

    def message_values(self, text: str) -> tuple:
        values = list(self.m_row)
        values[self.text_at] = text
        return tuple(values)

    def delivery_values(self, message_id: int) -> list[tuple]:
        out = []
        for _, row in self.d_rows:
            values = list(row)
            values[self.msg_at] = message_id
            out.append(tuple(values))
        return out

    def fill(self, n: int) -> None:
        """The 100,000 existing messages: batched, as fast as sqlite3 allows."""
        with self.conn:
            for start in range(0, n, 10_000):
                first = self.conn.execute("SELECT max(id) FROM messages").fetchone()[0] + 1
                count = min(10_000, n - start)
                self.conn.executemany(
                    self.insert_m, [self.message_values(f"old {start + i}") for i in range(count)]
                )
                self.conn.executemany(
                    self.insert_d,
                    [v for i in range(count) for v in self.delivery_values(first + i)],
                )

    def post(self, text: str) -> None:
        now = datetime.now(UTC).isoformat()
        with self.conn:  # one transaction per message, like Service.post
            cur = self.conn.execute(self.insert_m, self.message_values(text))
            message_id = cur.lastrowid
            self.conn.executemany(self.insert_d, self.delivery_values(message_id))
            self.conn.execute(
                "UPDATE conversations SET last_message_at = ?, last_message_id = ? WHERE id = ?",
                (now, message_id, self.conv_id),
            )
            self.conn.execute(self.insert_c, self.c_row)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.isolation_level = ""  # `with conn:` opens and commits a transaction
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


async def _prepare(folder: Path, existing: int) -> int:
    service = await Service.open(data_dir=folder)
    try:
        for email, name, kind in (
            (ANN, "Ann", PersonKind.USER),
            (BOB, "Bob", PersonKind.USER),
            (CARL, "Carl", PersonKind.CUSTOMER),
        ):
            await service.add_person(email=email, name=name, kind=kind)
        item = await service.create_item(title="Busy item", followers=[ANN, BOB, CARL])
        posted = await service.post(
            author=ANN, text="template", item_number=item.number, kind=ConversationKind.EXTERNAL
        )
    finally:
        await service.close()
    conn = _connect(folder / DB_FILENAME)
    RawWriter(conn, posted.message_id).fill(existing)
    conn.close()
    return item.number


async def _service_posts(folder: Path, number: int, n: int, profile: bool) -> float:
    service = await Service.open(data_dir=folder)
    prof = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if prof:
            prof.enable()
        for i in range(n):
            await service.post(
                author=ANN, text=f"new {i}", item_number=number, kind=ConversationKind.EXTERNAL
            )
        if prof:
            prof.disable()
        elapsed = time.perf_counter() - started
    finally:
        await service.close()
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return elapsed


def _raw_posts(folder: Path, n: int) -> float:
    conn = _connect(folder / DB_FILENAME)
    template = conn.execute("SELECT min(id) FROM messages").fetchone()[0]
    writer = RawWriter(conn, template)
    started = time.perf_counter()
    for i in range(n):
        writer.post(f"new {i}")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profile", action="store_true", help="cProfile the service's posts")
    args = p.parse_args()
    existing, n = (2_000, 300) if args.quick else (100_000, 10_000)
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-post-") as tmp:
        base, svc_dir, raw_dir = Path(tmp, "base"), Path(tmp, "svc"), Path(tmp, "raw")
        base.mkdir()
        t0 = time.perf_counter()
        number = asyncio.run(_prepare(base, existing))
        fill_s = time.perf_counter() - t0
        shutil.copytree(base, svc_dir)
        shutil.copytree(base, raw_dir)
        raw_s = _raw_posts(raw_dir, n)
        svc_s = asyncio.run(_service_posts(svc_dir, number, n, args.profile))
    report(
        "post: Service.post vs raw sqlite3, one transaction per message",
        ratio=raw_s / svc_s,
        aim=">= 0.3",
        details={
            "existing messages": f"{existing:,} (built in {fill_s:.1f} s)",
            "posted": f"{n:,} messages, 2 deliveries each",
            "service": f"{svc_s:.2f} s = {n / svc_s:,.0f} messages/s",
            "raw sqlite3": f"{raw_s:.2f} s = {n / raw_s:,.0f} messages/s",
        },
    )


if __name__ == "__main__":
    main()
