"""Real storage faults for tests (D8): a lock held by another connection or process, a full
disk (a small tmpfs, or SQLite's max_page_count), a read-only bind mount, a file mode that only
an unprivileged process respects, a damaged page, a damaged row."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "LOCK_SCRIPT",
    "as_unprivileged",
    "damage_page",
    "exclusive_lock_in_process",
    "fill_disk",
    "held_lock",
    "mounted_tmpfs",
    "page_of",
    "read_only_bind",
]

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# A second program holding the database: `locking_mode=EXCLUSIVE` plus a write keeps every
# other connection out (readers too, also in WAL mode) until it ends. It prints "locked" once
# it holds the lock and lets go when its stdin closes.
LOCK_SCRIPT = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA locking_mode=" + sys.argv[2])
    conn.execute("BEGIN " + sys.argv[3])
    conn.execute("CREATE TABLE IF NOT EXISTS held_by_another_program (x)")
    print("locked", flush=True)
    sys.stdin.read()
    conn.execute("ROLLBACK")
    conn.close()
    """
)


@contextlib.contextmanager
def held_lock(
    db: Path, *, locking_mode: str = "EXCLUSIVE", begin: str = "EXCLUSIVE"
) -> Iterator[subprocess.Popen[str]]:
    """Another process holds `db` locked until the block ends."""
    with subprocess.Popen(
        [sys.executable, "-c", LOCK_SCRIPT, str(db), locking_mode, begin],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "locked"
            yield proc
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)


@contextlib.contextmanager
def exclusive_lock_in_process(db: Path) -> Iterator[sqlite3.Connection]:
    """A second sqlite3 connection in this process holds `db` exclusively."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("CREATE TABLE IF NOT EXISTS held_by_another_program (x)")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _mount(*args: str) -> bool:
    if not IS_ROOT or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def mounted_tmpfs(where: Path, *, size_kib: int) -> Iterator[Path]:
    """A small tmpfs at `where` (needs root: skips the test otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill_disk(folder: Path) -> Path:
    """Fill the file system holding `folder` to the last byte; delete the result to undo."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left to fail at close
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    return filler


@contextlib.contextmanager
def read_only_bind(source: Path, where: Path) -> Iterator[Path]:
    """`source` seen read-only at `where` (a read-only bind mount; needs root)."""
    where.mkdir(parents=True, exist_ok=True)
    if not _mount("--bind", str(source), str(where)):
        pytest.skip("a bind mount needs root")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def as_unprivileged() -> list[str]:
    """A command prefix that makes file modes count: root ignores them unless it drops the
    capabilities that override them."""
    if not IS_ROOT:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv cannot honour file modes")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def page_of(db: Path, table: str, *, kind: str = "internal") -> int:
    """A page number of `table`'s b-tree (`internal` or `leaf`), from SQLite's dbstat."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
            (table, kind),
        ).fetchone()
    assert row is not None, f"{table} has no {kind} page"
    return int(row[0])


def damage_page(db: Path, page: int, *, offset: int = 0, length: int = 100) -> None:
    """Overwrite `length` bytes of page `page` (1-based) with garbage, as a bad disk would."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with db.open("r+b") as f:
        f.seek((page - 1) * size + offset)
        f.write(bytes((0xDE, 0xAD, 0xBE, 0xEF)) * (length // 4))
