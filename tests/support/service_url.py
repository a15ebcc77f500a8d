"""The URL `Service.open` and the command line take for a plain test database URL.

The `database_url` fixture hands out plain `sqlite:///` and `postgresql://` URLs; this names
the asyncio drivers instead, which the service still takes (they mean the sync drivers:
services/store/database.py `database_target`), so tests keep covering both spellings.
"""

from __future__ import annotations

__all__ = ["service_url"]


def service_url(url: str) -> str:
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url.removeprefix(plain)
    return url
