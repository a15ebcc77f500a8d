"""Recording a change inside a unit of work: the row the change feed reads, and the wake-up.

Every unit of work that changes what a client may see calls `record_change` once per thing it
changed, in the same transaction, so the feed's row commits (or rolls back) with the change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from services.store.database import Tx
from services.store.models import Change
from services.store.prepared import Prepared
from services.views import ChangeKind

__all__ = ["record_change"]

_INSERT_CHANGE = Prepared(insert(Change))


def record_change(
    tx: Tx,
    *,
    kind: ChangeKind,
    at: datetime,
    conversation_id: int | None = None,
    person_id: int | None = None,
) -> None:
    """Append a change-feed row and wake every watcher once this transaction commits."""
    tx.run(
        _INSERT_CHANGE,
        {"at": at, "kind": kind.value, "conversation_id": conversation_id, "person_id": person_id},
    )
    tx.notify_after_commit()
