"""One lock per workspace for what every process does once at its first start.

Processes starting at once on a new database must not both create the schema or both seed
it. On PostgreSQL, migrating and first-start seeding each take a transaction-scoped advisory
lock first, then look at what is there; on SQLite, the same transactions begin with the write
lock (BEGIN IMMEDIATE), which does the same.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection

__all__ = ["WORKSPACE_LOCK", "lock_workspace"]

# Deskbell's advisory lock key ("dskb" in ASCII); any fixed 64-bit number would do.
WORKSPACE_LOCK: Final = 0x64736B62


def lock_workspace(conn: Connection) -> None:
    """PostgreSQL: wait for, and hold until this transaction ends, the workspace's lock."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WORKSPACE_LOCK})")
