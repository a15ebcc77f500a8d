"""The desktop app with 100,000 messages in 5,000 conversations (issue 3), each figure against a
baseline measured in the same run:

(a) start until the window is shown with its data, as a process, vs a bare PySide6 script that
    shows an empty window (aim ≤ 2×); also start until the app's first paint (its "Loading…"
    frame, shown before the database opens);
(b) a message written by another writer until the bridge's counts change, p50/p99 over ~30 posts
    (aim p99 ≤ 0.5 s; the baseline is the write itself);
(c) opening a 10,000-message conversation in the message model (aim ≤ 100 ms) vs the raw sqlite3
    query for the same page, and moving a conversation to the top of a 5,000-row list model
    (aim ≤ 5 ms) vs a Python list pop/insert;
(d) resident memory of the app with that database loaded vs the bare window (aim ≤ 2×).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_desktop.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402
import qasync  # noqa: E402
from _common import shown  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from services.api import ConversationKind, ConversationRow, Inbox, PersonKind, Service  # noqa: E402
from services.store.db import DB_FILENAME  # noqa: E402
from ui.bridge import ServiceBridge  # noqa: E402
from ui.tasks import Tasks  # noqa: E402
from ui.widgets.conversation_list import ConversationListModel  # noqa: E402
from ui.widgets.message_view import PAGE_SIZE, MessageListModel  # noqa: E402

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@customer.org"
DESKBELL = [sys.executable, "-m", "app.cli"]

BARE = r"""
import os, sys, time, json
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
w = QMainWindow(); w.setWindowTitle("bare"); w.resize(1100, 720); w.show()
app.processEvents()
out = os.environ.get("DESKBELL_TEST_STATE_FILE")
if out:
    open(out + ".tmp", "w").write(json.dumps({"shown": time.time()})); os.replace(out + ".tmp", out)
if "--quit-after-shown" in sys.argv:
    sys.exit(0)
app.exec()
"""


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


# --- the database ----------------------------------------------------------------------------


async def _schema(folder: Path) -> None:
    service = await Service.open(data_dir=folder)
    try:
        await service.add_person(email=ANN, name="Ann Agent")
        await service.add_person(email=BOB, name="Bob Agent")
        await service.add_person(email=CARL, name="Carl Customer", kind=PersonKind.CUSTOMER)
    finally:
        await service.close()


def build_database(folder: Path, *, conversations: int, messages: int, big: int) -> None:
    """Schema and people through the service; the bulk as raw rows shaped like its own.

    Conversation 1 holds `big` messages, the rest share what is left. Item i has an internal
    (2i-1) and an external (2i) conversation; Ann, Bob and Carl follow every item. Old messages
    are seen; the newest of every tenth conversation is unseen by Ann (suppressed, so no email
    falls due at start)."""
    asyncio.run(_schema(folder))
    con = sqlite3.connect(folder / DB_FILENAME)
    con.execute("PRAGMA synchronous=OFF")
    ann, bob, carl = (
        con.execute("SELECT id FROM persons WHERE email=?", (e,)).fetchone()[0]
        for e in (ANN, BOB, CARL)
    )
    items = conversations // 2
    start = datetime.now(UTC) - timedelta(days=30)
    created = _ts(start)
    con.executemany(
        "INSERT INTO items (id, number, title, status, created_at, updated_at)"
        " VALUES (?,?,?,'open',?,?)",
        (
            (i, i, f"Customer issue number {i} about the VPN", created, created)
            for i in range(1, items + 1)
        ),
    )
    con.executemany(
        "INSERT INTO followers (item_id, person_id) VALUES (?,?)",
        ((i, p) for i in range(1, items + 1) for p in (ann, bob, carl)),
    )
    con.executemany(
        "INSERT INTO conversations (id, kind, item_id, created_at) VALUES (?,?,?,?)",
        (
            (c, "internal" if c % 2 else "external", (c + 1) // 2, created)
            for c in range(1, conversations + 1)
        ),
    )
    rest = messages - big
    per = [big] + [rest // (conversations - 1)] * (conversations - 1)
    per[-1] += rest - sum(per[1:])
    step = timedelta(days=29) / messages

    def message_rows() -> Iterator[tuple[object, ...]]:
        mid = 0
        for c in range(1, conversations + 1):
            external = c % 2 == 0
            for k in range(per[c - 1]):
                mid += 1
                author = (carl if k % 2 else ann) if external else (bob if k % 2 else ann)
                at = _ts(start + step * ((mid + (c * 997) % messages) // 2))
                yield (mid, c, author, f"Message {k} in conversation {c}: words words", at)

    con.executemany(
        "INSERT INTO messages (id, conversation_id, author_id, text, created_at, source)"
        " VALUES (?,?,?,?,?,'person')",
        message_rows(),
    )
    con.execute(
        "UPDATE conversations SET last_message_id = (SELECT max(id) FROM messages m"
        " WHERE m.conversation_id = conversations.id)"
    )
    con.execute(
        "UPDATE conversations SET last_message_at = (SELECT created_at FROM messages m"
        " WHERE m.id = conversations.last_message_id)"
    )
    last = {c: m for c, m in con.execute("SELECT id, last_message_id FROM conversations")}

    def delivery_rows() -> Iterator[tuple[object, ...]]:
        cur = con.execute(
            "SELECT m.id, m.conversation_id, m.author_id, m.created_at, c.kind"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        )
        for mid, cid, author, at, kind in cur.fetchall():
            audience = (ann, bob) if kind == "internal" else (ann, bob, carl)
            for person in audience:
                if person == author:
                    continue
                unseen = person == ann and cid % 10 == 1 and mid == last[cid]
                if unseen:
                    yield (mid, person, cid, at, at, "suppressed", None, "benchmark history")
                else:
                    yield (mid, person, cid, at, at, "seen", at, None)

    con.executemany(
        "INSERT INTO deliveries (message_id, recipient_id, conversation_id, created_at, due_at,"
        " state, seen_at, reason) VALUES (?,?,?,?,?,?,?,?)",
        delivery_rows(),
    )
    con.commit()
    con.execute("ANALYZE")
    con.close()


# --- (a) and (d): start and memory as processes ----------------------------------------------


def _run_shown(cmd: list[str], *, state: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Seconds from spawn until first paint and until the state file says shown (with data),
    and the RSS then (bytes). The bare window paints and shows at once."""
    with shown(cmd, state=state, env=env) as (proc, t0):
        shown_s = state.stat().st_mtime - t0
        doc = json.loads(state.read_text())
        painted = doc["painted_at"] - t0 if "painted_at" in doc else shown_s
        time.sleep(0.3)  # let the first page's deferred work settle before reading memory
        rss = psutil.Process(proc.pid).memory_info().rss
    return painted, shown_s, rss


def _run_quit_after_shown(cmd: list[str], *, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [*cmd, "--quit-after-shown"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def bench_start(folder: Path, runs: int) -> dict[str, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_API": "pyside6"}
    state = folder.parent / "state.json"
    app = [*DESKBELL, "--data-dir", str(folder), "--as", ANN]
    bare = [sys.executable, "-c", BARE]
    app_shown, bare_shown, app_rss, bare_rss, app_exit, bare_exit = [], [], [], [], [], []
    app_painted = []
    for _ in range(runs):
        _p, t, r = _run_shown(bare, state=state, env=env)
        bare_shown.append(t)
        bare_rss.append(r)
        p, t, r = _run_shown(app, state=state, env=env)
        app_painted.append(p)
        app_shown.append(t)
        app_rss.append(r)
        bare_exit.append(_run_quit_after_shown(bare, env=env))
        app_exit.append(_run_quit_after_shown(app, env=env))
    med = statistics.median
    return {
        "app_painted_s": med(app_painted),
        "app_shown_s": med(app_shown),
        "bare_shown_s": med(bare_shown),
        "app_exit_s": med(app_exit),
        "bare_exit_s": med(bare_exit),
        "app_rss_mb": med(app_rss) / 2**20,
        "bare_rss_mb": med(bare_rss) / 2**20,
    }


# --- (b) and (c): in this process, on the qasync loop ----------------------------------------


async def bench_live(folder: Path, posts: int) -> dict[str, float]:
    """A second Service (another writer, as the CLI or `deskbell serve` would be) posts; the
    app's bridge sees the counts change through the change feed's poll."""
    app_service = await Service.open(data_dir=folder)
    writer = await Service.open(data_dir=folder)
    tasks = Tasks()
    try:
        me = await app_service.person(ANN)
        await app_service.start()
        bridge = ServiceBridge(service=app_service, me=me, tasks=tasks)
        await bridge.start()
        changed = asyncio.Event()
        bridge.counts_changed.connect(lambda _c: changed.set())
        latencies, writes = [], []
        for i in range(posts):
            await asyncio.sleep(random.uniform(0.05, 0.25))  # land anywhere in the poll cycle
            changed.clear()
            t0 = time.perf_counter()
            await writer.post(
                author=BOB, text=f"live {i}", item_number=1 + i % 50, kind=ConversationKind.INTERNAL
            )
            writes.append(time.perf_counter() - t0)
            await asyncio.wait_for(changed.wait(), timeout=5)
            latencies.append(time.perf_counter() - t0)
        bridge.stop()
        await tasks.drain()
        latencies.sort()
        return {
            "live_p50_s": statistics.median(latencies),
            "live_p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "write_p50_s": statistics.median(writes),
        }
    finally:
        await writer.close()
        await app_service.close()


async def bench_models(folder: Path) -> dict[str, float]:
    service = await Service.open(data_dir=folder)
    tasks = Tasks()
    try:
        me = await service.person(ANN)
        opens = []
        for _ in range(5):
            model = MessageListModel(tasks=tasks)

            async def fetch(before_id: int | None, limit: int) -> list[object]:
                return await service.messages(  # type: ignore[return-value]
                    conversation_id=1, viewer_id=me.id, before_id=before_id, limit=limit
                )

            t0 = time.perf_counter()
            await model.open(conversation_id=1, fetch=fetch)  # type: ignore[arg-type]
            opens.append(time.perf_counter() - t0)
            assert model.rowCount() == PAGE_SIZE
        con = sqlite3.connect(folder / DB_FILENAME)
        raws = []
        for _ in range(5):
            t0 = time.perf_counter()
            con.execute(
                "SELECT m.id, m.text, m.created_at, p.name FROM messages m"
                " LEFT JOIN persons p ON p.id = m.author_id WHERE m.conversation_id = 1"
                " ORDER BY m.id DESC LIMIT ?",
                (PAGE_SIZE,),
            ).fetchall()
            raws.append(time.perf_counter() - t0)
        con.close()

        every = await service.open_conversations(
            person_id=me.id, inbox=Inbox.INTERNAL + Inbox.EXTERNAL, limit=10_000
        )

        async def page(offset: int, limit: int) -> list[ConversationRow]:
            return every[offset : offset + limit]

        rows = ConversationListModel(fetch_page=page, tasks=tasks)
        await rows.reload()
        while not rows.exhausted:
            await rows.load_more()
        n = rows.rowCount()
        moves, baseline = [], []
        plain = list(every)
        for k in range(20):
            bottom = rows.rows[-1]
            newer = ConversationRow(
                id=bottom.id,
                kind=bottom.kind,
                item_number=bottom.item_number,
                title=bottom.title,
                last_text=f"moved {k}",
                last_author="Bob Agent",
                last_at=datetime.now(UTC) + timedelta(days=1, seconds=k),
                unseen=bottom.unseen + 1,
            )
            t0 = time.perf_counter()
            rows.upsert([newer])
            moves.append(time.perf_counter() - t0)
            assert rows.rows[0].id == bottom.id
            t0 = time.perf_counter()
            plain.insert(0, plain.pop())
            baseline.append(time.perf_counter() - t0)
        await tasks.drain()
        return {
            "open_ms": statistics.median(opens) * 1000,
            "open_raw_ms": statistics.median(raws) * 1000,
            "list_rows": n,
            "move_ms": statistics.median(moves) * 1000,
            "move_max_ms": max(moves) * 1000,
            "move_raw_ms": statistics.median(baseline) * 1000,
        }
    finally:
        await service.close()


def _in_loop(coro_fn, *args):  # type: ignore[no-untyped-def]
    app = QApplication.instance() or QApplication([])
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        return runner.run(coro_fn(*args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database here")
    args = parser.parse_args()
    conversations, messages, big = (200, 4_000, 1_000) if args.quick else (5_000, 100_000, 10_000)
    runs, posts = (1, 5) if args.quick else (3, 30)
    with tempfile.TemporaryDirectory(prefix="bench-desktop-") as tmp:
        folder = args.keep or Path(tmp) / "data"
        if not (folder / DB_FILENAME).exists():
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            build_database(folder, conversations=conversations, messages=messages, big=big)
            print(
                f"built {messages:,} messages in {conversations:,} conversations"
                f" in {time.perf_counter() - t0:.1f} s"
            )
        start = bench_start(folder, runs)
        models = _in_loop(bench_models, folder)
        live = _in_loop(bench_live, folder, posts)
    r = {**start, **models, **live}
    print(
        f"(a) start to first paint: app {r['app_painted_s']:.2f} s, bare window"
        f" {r['bare_shown_s']:.2f} s: ratio {r['app_painted_s'] / r['bare_shown_s']:.2f}"
    )
    print(
        f"(a) start to window shown with data: app {r['app_shown_s']:.2f} s, bare window"
        f" {r['bare_shown_s']:.2f} s: ratio {r['app_shown_s'] / r['bare_shown_s']:.2f}"
        f" (aim ≤ 2); with --quit-after-shown to exit: app {r['app_exit_s']:.2f} s, bare"
        f" {r['bare_exit_s']:.2f} s: ratio {r['app_exit_s'] / r['bare_exit_s']:.2f}"
    )
    print(
        f"(b) another writer's post until counts_changed: p50 {r['live_p50_s'] * 1000:.0f} ms,"
        f" p99 {r['live_p99_s'] * 1000:.0f} ms over {posts} posts (aim p99 ≤ 500 ms); the"
        f" write itself p50 {r['write_p50_s'] * 1000:.1f} ms:"
        f" ratio {r['live_p50_s'] / r['write_p50_s']:.1f}"
    )
    print(
        f"(c) open the {big:,}-message conversation: {r['open_ms']:.1f} ms, raw sqlite3 page"
        f" {r['open_raw_ms']:.2f} ms: ratio {r['open_ms'] / r['open_raw_ms']:.1f} (aim ≤ 100 ms)"
    )
    print(
        f"    move to top of {r['list_rows']:,} rows: {r['move_ms']:.3f} ms (max"
        f" {r['move_max_ms']:.3f}), list pop/insert {r['move_raw_ms']:.4f} ms:"
        f" ratio {r['move_ms'] / r['move_raw_ms']:.0f} (aim ≤ 5 ms)"
    )
    print(
        f"(d) resident memory: app {r['app_rss_mb']:.0f} MB, bare window"
        f" {r['bare_rss_mb']:.0f} MB: ratio {r['app_rss_mb'] / r['bare_rss_mb']:.2f} (aim ≤ 2)"
    )
    print(json.dumps({k: round(v, 4) for k, v in r.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
