"""Sign-in throttling (T4): when the next attempt is taken, from the failures counted so far.

Pure rules over plain data; the time comes in as an argument. Failures are counted per
account and per client address. A few are free (a person mistypes); past those, each failure
makes the next attempt wait twice as long as the one before, up to a cap. A quiet window
(no failure for `WINDOW`) forgets the count. An attempt refused while waiting is not counted,
so waiting it out always works.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from services.errors import InputError, quoted

__all__ = [
    "BACKOFF_CAP",
    "FIRST_BACKOFF",
    "WINDOW",
    "Failures",
    "Scope",
    "after_failure",
    "client_key",
    "retry_at",
]

WINDOW: Final = timedelta(hours=1)
FIRST_BACKOFF: Final = timedelta(seconds=30)
BACKOFF_CAP: Final = timedelta(minutes=15)


class Scope(StrEnum):
    ACCOUNT = "account"  # free failures: a person mistyping their own password
    ADDRESS = "address"  # more: an office behind one address signs many people in

    @property
    def free(self) -> int:
        return 5 if self is Scope.ACCOUNT else 20


@dataclass(frozen=True, slots=True)
class Failures:
    count: int
    last_at: datetime


def _live(failures: Failures | None, now: datetime) -> int:
    if failures is None or now - failures.last_at >= WINDOW:
        return 0
    return failures.count


def retry_at(failures: Failures | None, *, scope: Scope, now: datetime) -> datetime | None:
    """When the next attempt will be taken, or None if it is taken now."""
    over = _live(failures, now) - scope.free
    if failures is None or over < 0:
        return None
    wait = min(BACKOFF_CAP, FIRST_BACKOFF * 2 ** min(over, 16))
    at = failures.last_at + wait
    return at if at > now else None


def after_failure(failures: Failures | None, *, now: datetime) -> Failures:
    """The count once a failed attempt at `now` is added."""
    return Failures(count=_live(failures, now) + 1, last_at=now)


def client_key(address: str) -> str:
    """The throttling key of a client's address: the address itself, or for IPv6 its /64
    (one subscriber's network, which a single attacker can rotate through)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InputError(f"{quoted(address)} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
