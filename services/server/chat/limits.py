"""C3: how often one session may post, one client address may ask for codes: a sliding
window per key, in this process's memory (bounded), answered with 429 and Retry-After."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Final

from aiohttp import web

from services.errors import TooManyAttemptsError

__all__ = ["LIMITS", "Limits", "RateLimit", "setup"]

_MAX_KEYS: Final = 50_000  # beyond this many keys, the quietest are forgotten first


class RateLimit:
    """At most `count` events per `window` for each key."""

    def __init__(self, *, count: int, window: timedelta, what: str) -> None:
        self._count = count
        self._window = window
        self._what = what
        self._seen: dict[str, deque[datetime]] = {}

    def take(self, key: str, now: datetime) -> None:
        """Count one event for `key`; TooManyAttemptsError (429) when over the limit."""
        times = self._seen.pop(key, None) or deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) >= self._count:
            self._seen[key] = times
            raise TooManyAttemptsError(
                f"too many {self._what}; try again in a moment", retry_at=times[0] + self._window
            )
        times.append(now)
        self._seen[key] = times  # re-inserted: the dict's order is least recently used first
        while len(self._seen) > _MAX_KEYS:
            del self._seen[next(iter(self._seen))]


class Limits:
    """C3: this server's rate limits (each application its own)."""

    def __init__(self) -> None:
        # A person types a few messages a minute; a script posting faster is stopped.
        self.posts = RateLimit(count=20, window=timedelta(minutes=1), what="messages at once")
        # Codes asked for from one client address (each address has its own limit too).
        self.codes = RateLimit(count=10, window=timedelta(hours=1), what="codes asked for")


LIMITS: Final = web.AppKey("chat_limits", Limits)


def setup(app: web.Application) -> None:
    app[LIMITS] = Limits()
