"""E7: an address whose emails bounced hard again and again gets no more email until an
administrator clears it (`Service.clear_bounces`); the outbox logs what it holds back as
suppressed with this reason. Soft (4.x.x) bounces are kept but never block."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.store.models import MailBounce

__all__ = ["HARD_BOUNCE_LIMIT", "block_reason", "blocked_reasons"]

HARD_BOUNCE_LIMIT = 3  # hard bounces, counted once per email, since last cleared


def block_reason(bounce: MailBounce) -> str:
    return (
        f"not sent: {bounce.address} bounced {bounce.hard_bounces} times "
        f"(last: {bounce.last_reason}); an administrator can clear it"
    )[:500]


async def blocked_reasons(session: AsyncSession, addresses: Collection[str]) -> dict[str, str]:
    """Of `addresses` (any case), those blocked now, lowercased, each with its reason."""
    wanted = {a.lower() for a in addresses}
    if not wanted:
        return {}
    rows = await session.execute(
        select(MailBounce).where(MailBounce.address.in_(wanted), MailBounce.blocked_at.is_not(None))
    )
    return {b.address: block_reason(b) for b in rows.scalars()}
