"""Which process reads a mailbox (I1, issue 9): one process of a workspace at a time.

A lease row per mailbox, on the database's clock (services/mail/leases.py), held by the
process that reads it and renewed while it reads; another process waits until it runs out (at
once if its owner is visibly dead on this host) and then takes over. Both engines work the
same way; the renewal is the only timer, at a third of the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, or_, select, update

from services.mail.leases import as_local, db_later, db_now, lease_params, owner_dead
from services.store.database import Tx
from services.store.models import ImapReaderLease
from services.store.prepared import Prepared

__all__ = ["LeaseState", "give_up", "take"]

_leases = cast(Table, ImapReaderLease.__table__)
_MINE = _leases.c.account == bindparam("b_account")
_TAKE = Prepared[tuple[str]](
    update(_leases)
    .where(
        _MINE,
        or_(
            _leases.c.owner == bindparam("b_owner"),
            _leases.c.owner.is_(None),
            _leases.c.until.is_(None),
            _leases.c.until <= db_now(),
        ),
    )
    .values(owner=bindparam("b_owner"), until=db_later())
    .returning(_leases.c.account)
)
_TAKE_FROM_DEAD = Prepared[tuple[str]](
    update(_leases)
    .where(_MINE, _leases.c.owner == bindparam("b_old"))
    .values(owner=bindparam("b_owner"), until=db_later())
    .returning(_leases.c.account)
)
_HOLDER = Prepared[tuple[str | None, datetime | None]](
    select(_leases.c.owner, as_local(_leases.c.until)).where(_MINE)
)
_GIVE_UP = Prepared(
    update(_leases)
    .where(_MINE, _leases.c.owner == bindparam("b_owner"))
    .values(owner=None, until=None)
)


@dataclass(frozen=True, slots=True)
class LeaseState:
    held: bool  # this owner holds the lease now
    ends_at: datetime | None  # when another owner's lease runs out (the service's clock)


def take(tx: Tx, *, account: str, owner: str, now: datetime, span_s: float) -> LeaseState:
    """Take or renew the lease on `account`'s mailbox for `span_s` seconds, if it is free,
    ours already, run out, or held by a dead process of this host."""
    params = {"b_account": account, "b_owner": owner, **lease_params(now, span_s)}
    if tx.is_postgres:  # the PostgreSQL dialect loads only for PostgreSQL
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        tx.conn.execute(pg_insert(_leases).values(account=account).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        tx.conn.execute(sqlite_insert(_leases).values(account=account).on_conflict_do_nothing())
    if tx.run(_TAKE, params):
        return LeaseState(held=True, ends_at=None)
    [(holder, ends_at)] = tx.run(_HOLDER, params)
    if holder and owner_dead(holder) and tx.run(_TAKE_FROM_DEAD, {**params, "b_old": holder}):
        return LeaseState(held=True, ends_at=None)
    return LeaseState(held=False, ends_at=ends_at)


def give_up(tx: Tx, *, account: str, owner: str) -> None:
    """Free the lease at once (a stop), so another process takes the mailbox over now: the
    commit wakes the processes waiting for it (`Database.watch`)."""
    tx.run(_GIVE_UP, {"b_account": account, "b_owner": owner})
    tx.notify_after_commit()
