"""Numbers handed out in commit order, across processes: change positions and item numbers.

`take(tx, name, k)` adds `k` to a row of `counters` and returns the new value; the numbers
`value - k + 1 .. value` are the caller's. The UPDATE locks that row until the transaction
ends, so two transactions never get the same number and, on PostgreSQL, the numbers become
visible in the order they were handed out: whoever takes the next one waits for the previous
holder to commit (or roll back, which hands the same numbers out again). Take a counter as
late as the transaction allows, since it serializes the transactions that take it.
"""

from __future__ import annotations

from sqlalchemy import bindparam, update

from services.store.database import Tx
from services.store.models import Counter
from services.store.prepared import Prepared

__all__ = ["CHANGES", "ITEMS", "take"]

CHANGES = "changes"
ITEMS = "items"

_TAKE = Prepared[tuple[int]](
    update(Counter)
    .where(Counter.name == bindparam("b_name"))
    .values(value=Counter.value + bindparam("b_count"))
    .returning(Counter.value)
)


def take(tx: Tx, name: str, count: int = 1) -> int:
    """Reserve `count` numbers of counter `name`; returns the last of them."""
    rows = tx.run(_TAKE, {"b_name": name, "b_count": count})
    if not rows:
        raise RuntimeError(f"the database has no counter {name!r}: its schema is not migrated")
    return int(rows[0][0])
