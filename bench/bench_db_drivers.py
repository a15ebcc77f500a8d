"""Which driver path for the database worker (issue 9)? A post-shaped transaction, many ways.

One transaction of 7 statements shaped like a post: author by email, conversation by item,
followers with their delay (a join), the message (INSERT ... RETURNING), its deliveries
(executemany), the conversation's last time (UPDATE), a change row. Each variant runs the same
transactions into its own database, in interleaved rounds (A B C ... A B C ...), and prints the
median CPU time (this process, every thread) and wall time per transaction, with the load
average beside each round's figures. Baselines: raw sqlite3 for SQLite, raw psycopg for
PostgreSQL; the PostgreSQL server's own CPU is not counted (another process).

    .venv/bin/python bench/bench_db_drivers.py [--quick] [--rounds 7] [--per-round 400]

PostgreSQL variants run when the server binaries are installed (a private cluster is started
as in the tests, with fsync off: the client's cost is what is compared).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import parser

from services.store.database import Database, Tx
from services.store.models import UtcDateTime
from services.store.prepared import Prepared

META = sa.MetaData()
PEOPLE = sa.Table(
    "people",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(200), unique=True, nullable=False),
    sa.Column("delay_s", sa.Integer),
)
CONVERSATIONS = sa.Table(
    "conversations",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_no", sa.Integer, unique=True, nullable=False),
    sa.Column("last_at", UtcDateTime),
)
FOLLOWERS = sa.Table(
    "followers",
    META,
    sa.Column("conversation_id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.Integer, primary_key=True),
)
MESSAGES = sa.Table(
    "messages",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, nullable=False),
    sa.Column("author_id", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
DELIVERIES = sa.Table(
    "deliveries",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, nullable=False),
    sa.Column("recipient_id", sa.Integer, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
)
CHANGES = sa.Table(
    "changes",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("ref", sa.Integer, nullable=False),
)
sa.Index("ix_followers_conversation", FOLLOWERS.c.conversation_id)

P = sa.bindparam
CORE = {
    "author": sa.select(PEOPLE.c.id).where(PEOPLE.c.email == P("email")),
    "conversation": sa.select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.item_no == P("item")),
    "followers": sa.select(PEOPLE.c.id, PEOPLE.c.delay_s)
    .join(FOLLOWERS, FOLLOWERS.c.person_id == PEOPLE.c.id)
    .where(FOLLOWERS.c.conversation_id == P("cid"), PEOPLE.c.id != P("author_id")),
    "message": sa.insert(MESSAGES).returning(MESSAGES.c.id),
    "delivery": sa.insert(DELIVERIES),
    "touch": sa.update(CONVERSATIONS).where(CONVERSATIONS.c.id == P("cid")),
    "change": sa.insert(CHANGES),
}
PREPARED = {name: Prepared(stmt) for name, stmt in CORE.items()}

# Raw SQL for the baselines: (sqlite3 qmark, psycopg %s, asyncpg $n).
RAW = {
    "author": "SELECT id FROM people WHERE email = ?",
    "conversation": "SELECT id FROM conversations WHERE item_no = ?",
    "followers": "SELECT people.id, people.delay_s FROM people JOIN followers "
    "ON followers.person_id = people.id WHERE followers.conversation_id = ? AND people.id != ?",
    "message": "INSERT INTO messages (conversation_id, author_id, body, created_at) "
    "VALUES (?, ?, ?, ?) RETURNING id",
    "delivery": "INSERT INTO deliveries (message_id, recipient_id, due_at, state) "
    "VALUES (?, ?, ?, ?)",
    "touch": "UPDATE conversations SET last_at = ? WHERE id = ?",
    "change": "INSERT INTO changes (kind, ref) VALUES (?, ?)",
}


def _psycopg_sql(sql: str) -> str:
    return sql.replace("?", "%s")


def _asyncpg_sql(sql: str) -> str:
    out, n = [], 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
AUTHOR = "ann@example.com"
ITEMS = 20


def seed(url: str) -> None:
    """The schema, 4 people, ITEMS conversations each followed by three of them."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(PEOPLE),
            [{"email": e, "delay_s": 60} for e in (AUTHOR, "bob@x", "cy@x", "di@x")],
        )
        conn.execute(
            sa.insert(CONVERSATIONS), [{"item_no": i, "last_at": NOW} for i in range(ITEMS)]
        )
        conn.execute(
            sa.insert(FOLLOWERS),
            [{"conversation_id": c + 1, "person_id": p} for c in range(ITEMS) for p in (1, 2, 3)],
        )
    engine.dispose()


# --- one transaction, each way ---


def post_prepared(tx: Tx, i: int) -> int:
    (author,) = tx.run(PREPARED["author"], {"email": AUTHOR})[0]
    (cid,) = tx.run(PREPARED["conversation"], {"item": i % ITEMS})[0]
    followers = tx.run(PREPARED["followers"], {"cid": cid, "author_id": author})
    ((mid,),) = tx.run(
        PREPARED["message"],
        {"conversation_id": cid, "author_id": author, "body": f"post {i}", "created_at": NOW},
    )
    tx.run_many(
        PREPARED["delivery"],
        [
            {
                "message_id": mid,
                "recipient_id": pid,
                "due_at": NOW + timedelta(seconds=d),
                "state": "pending",
            }
            for pid, d in followers
        ],
    )
    tx.run(PREPARED["touch"], {"cid": cid, "last_at": NOW})
    tx.run(PREPARED["change"], {"kind": "message", "ref": mid})
    return int(mid)


def post_core(conn: sa.Connection, i: int) -> int:
    author = conn.execute(CORE["author"], {"email": AUTHOR}).scalar_one()
    cid = conn.execute(CORE["conversation"], {"item": i % ITEMS}).scalar_one()
    followers = conn.execute(CORE["followers"], {"cid": cid, "author_id": author}).all()
    mid = conn.execute(
        CORE["message"],
        {"conversation_id": cid, "author_id": author, "body": f"post {i}", "created_at": NOW},
    ).scalar_one()
    conn.execute(
        CORE["delivery"],
        [
            {
                "message_id": mid,
                "recipient_id": pid,
                "due_at": NOW + timedelta(seconds=d),
                "state": "pending",
            }
            for pid, d in followers
        ],
    )
    conn.execute(CORE["touch"], {"cid": cid, "last_at": NOW})
    conn.execute(CORE["change"], {"kind": "message", "ref": mid})
    return int(mid)


async def post_core_async(conn: Any, i: int) -> int:
    author = (await conn.execute(CORE["author"], {"email": AUTHOR})).scalar_one()
    cid = (await conn.execute(CORE["conversation"], {"item": i % ITEMS})).scalar_one()
    followers = (await conn.execute(CORE["followers"], {"cid": cid, "author_id": author})).all()
    mid = (
        await conn.execute(
            CORE["message"],
            {"conversation_id": cid, "author_id": author, "body": f"post {i}", "created_at": NOW},
        )
    ).scalar_one()
    await conn.execute(
        CORE["delivery"],
        [
            {
                "message_id": mid,
                "recipient_id": pid,
                "due_at": NOW + timedelta(seconds=d),
                "state": "pending",
            }
            for pid, d in followers
        ],
    )
    await conn.execute(CORE["touch"], {"cid": cid, "last_at": NOW})
    await conn.execute(CORE["change"], {"kind": "message", "ref": mid})
    return int(mid)


def post_raw(cur: Any, sql: dict[str, str], i: int, *, stamp: Callable[[datetime], Any]) -> int:
    """sqlite3 or psycopg: the same look-ups and rows, hand-written."""
    cur.execute(sql["author"], (AUTHOR,))
    (author,) = cur.fetchone()
    cur.execute(sql["conversation"], (i % ITEMS,))
    (cid,) = cur.fetchone()
    cur.execute(sql["followers"], (cid, author))
    followers = cur.fetchall()
    cur.execute(sql["message"], (cid, author, f"post {i}", stamp(NOW)))
    (mid,) = cur.fetchone()
    cur.executemany(
        sql["delivery"],
        [(mid, pid, stamp(NOW + timedelta(seconds=d)), "pending") for pid, d in followers],
    )
    cur.execute(sql["touch"], (stamp(NOW), cid))
    cur.execute(sql["change"], ("message", mid))
    return int(mid)


async def post_asyncpg(conn: Any, sql: dict[str, str], i: int) -> int:
    async with conn.transaction():
        author = await conn.fetchval(sql["author"], AUTHOR)
        cid = await conn.fetchval(sql["conversation"], i % ITEMS)
        followers = await conn.fetch(sql["followers"], cid, author)
        mid = await conn.fetchval(sql["message"], cid, author, f"post {i}", _naive(NOW))
        await conn.executemany(
            sql["delivery"],
            [(mid, r[0], _naive(NOW + timedelta(seconds=r[1])), "pending") for r in followers],
        )
        await conn.execute(sql["touch"], _naive(NOW), cid)
        await conn.execute(sql["change"], "message", mid)
        return int(mid)


# --- the variants: each gets a database and returns "run n transactions" ---

Runner = Callable[[int, int], Awaitable[None]]


def _sqlite_stamp(moment: datetime) -> str:
    return _naive(moment).isoformat(sep=" ")  # the text SQLAlchemy's SQLite DATETIME stores


async def sqlite_variants(folder: Path) -> dict[str, tuple[Runner, Callable[[], Awaitable[None]]]]:
    import sqlite3

    variants: dict[str, tuple[Runner, Callable[[], Awaitable[None]]]] = {}

    def fresh(name: str) -> Path:
        path = folder / f"{name}.db"
        seed(f"sqlite:///{path}")
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        return path

    raw = sqlite3.connect(fresh("raw"), isolation_level=None)
    raw.execute("PRAGMA synchronous=NORMAL")
    sql = RAW

    async def run_raw(start: int, n: int) -> None:
        cur = raw.cursor()
        for i in range(start, start + n):
            cur.execute("BEGIN IMMEDIATE")
            post_raw(cur, sql, i, stamp=_sqlite_stamp)
            cur.execute("COMMIT")

    async def close_raw() -> None:
        raw.close()

    variants["sqlite3 raw (baseline)"] = (run_raw, close_raw)

    engine = sa.create_engine(f"sqlite:///{fresh('core')}")
    sa.event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA synchronous=NORMAL"))

    async def run_core(start: int, n: int) -> None:
        for i in range(start, start + n):
            with engine.begin() as conn:
                post_core(conn, i)

    async def close_core() -> None:
        engine.dispose()

    variants["SQLAlchemy Core sync"] = (run_core, close_core)

    # The same Prepared statements on the DBAPI cursor, in this thread: the worker minus its hop.
    direct = sa.create_engine(f"sqlite:///{fresh('direct')}")
    sa.event.listen(direct, "connect", lambda c, _r: c.execute("PRAGMA synchronous=NORMAL"))
    direct_conn = direct.connect()

    async def run_direct(start: int, n: int) -> None:
        for i in range(start, start + n):
            with direct_conn.begin():
                post_prepared(Tx(direct_conn, writing=True, is_postgres=False), i)

    async def close_direct() -> None:
        direct_conn.close()
        direct.dispose()

    variants["Prepared on the cursor, same thread (no hop)"] = (run_direct, close_direct)

    db = await Database.open(f"sqlite:///{fresh('worker')}")

    async def run_db(start: int, n: int) -> None:
        for i in range(start, start + n):
            await db.write(post_prepared, i)

    variants["Database.write + Prepared (sqlite3 worker)"] = (run_db, db.close)
    return variants


async def postgres_variants(
    url_for: Callable[[], str],
) -> dict[str, tuple[Runner, Callable[[], Awaitable[None]]]]:
    import asyncpg
    import psycopg
    from sqlalchemy.ext.asyncio import create_async_engine

    variants: dict[str, tuple[Runner, Callable[[], Awaitable[None]]]] = {}
    loop = asyncio.get_running_loop()

    raw_pool = ThreadPoolExecutor(1)
    raw = psycopg.connect(url_for())
    raw_sql = {k: _psycopg_sql(v) for k, v in RAW.items()}

    def raw_tx(i: int) -> None:
        with raw.transaction(), raw.cursor() as cur:
            post_raw(cur, raw_sql, i, stamp=_naive)

    async def run_raw(start: int, n: int) -> None:
        for i in range(start, start + n):
            await loop.run_in_executor(raw_pool, raw_tx, i)

    async def close_raw() -> None:
        raw.close()
        raw_pool.shutdown()

    variants["psycopg raw in a worker (baseline)"] = (run_raw, close_raw)

    core_pool = ThreadPoolExecutor(1)
    engine = sa.create_engine(url_for().replace("postgresql://", "postgresql+psycopg://"))

    def core_tx(i: int) -> None:
        with engine.begin() as conn:
            post_core(conn, i)

    async def run_core(start: int, n: int) -> None:
        for i in range(start, start + n):
            await loop.run_in_executor(core_pool, core_tx, i)

    async def close_core() -> None:
        engine.dispose()
        core_pool.shutdown()

    variants["SQLAlchemy Core + psycopg in a worker"] = (run_core, close_core)

    async_engine = create_async_engine(url_for().replace("postgresql://", "postgresql+asyncpg://"))

    async def run_async(start: int, n: int) -> None:
        for i in range(start, start + n):
            async with async_engine.begin() as conn:
                await post_core_async(conn, i)

    variants["SQLAlchemy async Core + asyncpg"] = (run_async, async_engine.dispose)

    url = sa.make_url(url_for())
    apg = await asyncpg.connect(
        host=url.query["host"],
        port=int(url.query["port"]),
        user=url.username,
        database=url.database,
    )
    apg_sql = {k: _asyncpg_sql(v) for k, v in RAW.items()}

    async def run_apg(start: int, n: int) -> None:
        for i in range(start, start + n):
            await post_asyncpg(apg, apg_sql, i)

    variants["asyncpg raw"] = (run_apg, apg.close)

    db = await Database.open(url_for(), pool_size=1)

    async def run_db(start: int, n: int) -> None:
        for i in range(start, start + n):
            await db.write(post_prepared, i)

    variants["Database.write + Prepared (psycopg worker)"] = (run_db, db.close)
    return variants


async def measure(
    title: str,
    variants: dict[str, tuple[Runner, Callable[[], Awaitable[None]]]],
    *,
    rounds: int,
    per_round: int,
) -> None:
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    for run, _close in variants.values():  # warm-up: compile, prepare, fill caches
        await run(10**6, 50)
    start = 0
    for r in range(rounds):
        for name, (run, _close) in variants.items():
            c0, w0 = time.process_time(), time.perf_counter()
            await run(start, per_round)
            c1, w1 = time.process_time(), time.perf_counter()
            cpu[name].append((c1 - c0) / per_round * 1e6)
            wall[name].append((w1 - w0) / per_round * 1e6)
            start += per_round
        load = os.getloadavg()
        print(f"   round {r + 1}/{rounds} done, load average {load[0]:.2f} {load[1]:.2f}")
    baseline = next(iter(variants))
    base_cpu = statistics.median(cpu[baseline])
    print(f"== {title}: median per transaction over {rounds} rounds of {per_round}")
    print(f"   {'variant':48} {'CPU µs':>8} {'wall µs':>8} {'CPU vs baseline':>16}")
    for name in variants:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"   {name:48} {c:8.0f} {w:8.0f} {c / base_cpu:15.2f}x")
    load = os.getloadavg()
    print(f"   load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (cores: {os.cpu_count()})")
    sys.stdout.flush()
    for _name, (_run, close) in variants.items():
        await close()


async def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--per-round", type=int, default=400)
    args = p.parse_args()
    rounds, per_round = (2, 30) if args.quick else (args.rounds, args.per_round)
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-") as folder:
        await measure(
            "SQLite (WAL, synchronous=NORMAL)",
            await sqlite_variants(Path(folder)),
            rounds=rounds,
            per_round=per_round,
        )
    from tests.support.postgres import PostgresUnavailable, start_cluster

    try:
        cluster = start_cluster(seed)
    except PostgresUnavailable as exc:
        print(f"== PostgreSQL skipped: {exc}")
        return
    try:
        await measure(
            "PostgreSQL (private cluster, unix socket, fsync off)",
            await postgres_variants(lambda: cluster.url(cluster.create_database())),
            rounds=rounds,
            per_round=per_round,
        )
    finally:
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
