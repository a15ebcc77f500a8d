"""E7: an address whose emails bounced hard again and again gets no more email until an
administrator clears it (`Service.clear_bounces`); the outbox logs what it holds back as
suppressed with this reason. Soft (4.x.x) bounces are kept but never block."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, bindparam, select

from services.store.database import Tx
from services.store.models import MailBounce
from services.store.prepared import Prepared

__all__ = ["HARD_BOUNCE_LIMIT", "block_reason", "blocked_reasons"]

HARD_BOUNCE_LIMIT = 3  # hard bounces, counted once per email, since last cleared

_bounces = cast(Table, MailBounce.__table__)
_BLOCKED = Prepared[tuple[str, int, str | None]](
    select(_bounces.c.address, _bounces.c.hard_bounces, _bounces.c.last_reason).where(
        _bounces.c.address.in_(bindparam("b_addresses", expanding=True)),
        _bounces.c.blocked_at.is_not(None),
    )
)


def block_reason(address: str, hard_bounces: int, last_reason: str | None) -> str:
    return (
        f"not sent: {address} bounced {hard_bounces} times "
        f"(last: {last_reason}); an administrator can clear it"
    )[:500]


def blocked_reasons(tx: Tx, addresses: Iterable[str]) -> dict[str, str]:
    """Of `addresses` (any case), those blocked now, lowercased, each with its reason."""
    wanted = sorted({a.lower() for a in addresses})
    if not wanted:
        return {}
    return {row[0]: block_reason(*row) for row in tx.run(_BLOCKED, {"b_addresses": wanted})}
