"""Recording a change inside a unit of work: the row the change feed reads, and the wake-up.

Every unit of work that changes what a client may see calls `record_change` once per thing it
changed. The rows are written as the transaction's last statements (`Tx.before_commit`), with
positions taken from the "changes" counter (services/store/counters.py): they commit (or roll
back) with the change, and a reader asking for "every change past position N" never misses
one that committed out of order. Then every watcher is woken (`Tx.notify_after_commit`), this
process's feed with the rows as written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from services.store import counters
from services.store.database import Tx
from services.store.models import Change
from services.store.prepared import Prepared
from services.views import ChangeEvent, ChangeKind

__all__ = ["record_change"]

_PENDING = "deskbell.changes"
_INSERT_CHANGE = Prepared(insert(Change))
_Key = tuple[str, int | None, int | None, int | None]  # kind, conversation, person, subject


def record_change(
    tx: Tx,
    *,
    kind: ChangeKind,
    at: datetime,
    conversation_id: int | None = None,
    person_id: int | None = None,
    subject_id: int | None = None,
) -> None:
    """Append a change-feed row at commit and wake every watcher once this transaction commits.
    `subject_id`: the message, item or session it is about (see `ChangeEvent`)."""
    if not tx.writing:
        raise RuntimeError("a read changes nothing: use Database.write")
    pending: dict[_Key, datetime] | None = tx.info.get(_PENDING)
    if pending is None:
        pending = tx.info[_PENDING] = {}
        tx.before_commit(_write_changes)
    # The same change twice in one transaction tells a reader nothing more.
    pending.setdefault((kind.value, conversation_id, person_id, subject_id), at)


def _write_changes(tx: Tx) -> None:
    pending: dict[_Key, datetime] = tx.info.pop(_PENDING, {})
    if not pending:
        return
    last = counters.take(tx, counters.CHANGES, len(pending))
    first = last - len(pending) + 1
    tx.run_many(
        _INSERT_CHANGE,
        [
            {
                "position": first + n,
                "at": at,
                "kind": kind,
                "conversation_id": conversation_id,
                "person_id": person_id,
                "subject_id": subject_id,
            }
            for n, ((kind, conversation_id, person_id, subject_id), at) in enumerate(
                pending.items()
            )
        ],
    )
    # This process's feed gets the rows as written: it need not read them back.
    tx.notify_after_commit(
        written=[
            ChangeEvent(
                position=first + n,
                kind=ChangeKind(kind),
                conversation_id=conversation_id,
                person_id=person_id,
                subject_id=subject_id,
                at=at,
            )
            for n, ((kind, conversation_id, person_id, subject_id), at) in enumerate(
                pending.items()
            )
        ]
    )
