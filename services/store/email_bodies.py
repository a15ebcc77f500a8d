"""Emails' bytes, kept apart from their `emails` rows (see `EmailBody`): write and read them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, insert, select

from services.store.database import Tx
from services.store.models import EmailBody
from services.store.prepared import Prepared

__all__ = ["bodies_of", "body_of", "store_bodies"]

_bodies = cast(Table, EmailBody.__table__)

_INSERT = Prepared(insert(_bodies))
_ONE = Prepared[tuple[bytes]](select(_bodies.c.raw).where(_bodies.c.email_id == bindparam("b_id")))
_MANY = Prepared[tuple[int, bytes]](
    select(_bodies.c.email_id, _bodies.c.raw).where(
        _bodies.c.email_id.in_(bindparam("b_ids", expanding=True))
    )
)


def store_bodies(tx: Tx, bodies: Iterable[tuple[int, bytes | None]]) -> None:
    """Keep each email's bytes by its id; an email without bytes gets no row."""
    tx.run_many(_INSERT, [{"email_id": i, "raw": raw} for i, raw in bodies if raw is not None])


def body_of(tx: Tx, email_id: int) -> bytes | None:
    rows = tx.run(_ONE, {"b_id": email_id})
    return rows[0][0] if rows else None


def bodies_of(tx: Tx, email_ids: Sequence[int]) -> dict[int, bytes]:
    """The bytes of those of `email_ids` that have them, in one statement."""
    if not email_ids:
        return {}
    return dict(tx.run(_MANY, {"b_ids": list(email_ids)}))
