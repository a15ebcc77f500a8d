"""A team replica's queue of writes for the server (T5): `team_writes`, in the order they were
made; each row is written with the local write it stands for (services/team/writes.py) and
removed once the server has it (services/team/sync.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, func, select

from services.store.database import Tx
from services.store.models import TeamWrite

__all__ = [
    "FOLLOW",
    "POST",
    "SEEN",
    "SETTINGS",
    "QueuedWrite",
    "done",
    "next_write",
    "pending",
    "queued",
]

POST: Final = "post"  # {"conversation_id", "text"}; the client id is the message's
SEEN: Final = "seen"  # {"message_ids"}
FOLLOW: Final = "follow"  # {"number", "email", "on"}
SETTINGS: Final = "settings"  # {"email", "settings"}: NotificationSettings as plain JSON


@dataclass(frozen=True, slots=True)
class QueuedWrite:
    id: int
    client_id: str
    kind: str
    payload: dict[str, Any]


_COLUMNS = (TeamWrite.id, TeamWrite.client_id, TeamWrite.kind, TeamWrite.payload)


def next_write(tx: Tx) -> QueuedWrite | None:
    row = tx.conn.execute(select(*_COLUMNS).order_by(TeamWrite.id).limit(1)).first()
    return None if row is None else QueuedWrite(row[0], row[1], row[2], dict(row[3]))


def queued(tx: Tx, kind: str) -> list[tuple[QueuedWrite, Any]]:
    """The waiting writes of one kind, oldest first, each with when it was made."""
    rows = tx.conn.execute(
        select(*_COLUMNS, TeamWrite.created_at).where(TeamWrite.kind == kind).order_by(TeamWrite.id)
    )
    return [(QueuedWrite(r[0], r[1], r[2], dict(r[3])), r[4]) for r in rows]


def pending(tx: Tx) -> int:
    return int(tx.conn.execute(select(func.count()).select_from(TeamWrite)).scalar_one())


def done(tx: Tx, write_id: int) -> None:
    tx.conn.execute(delete(TeamWrite).where(TeamWrite.id == write_id))
