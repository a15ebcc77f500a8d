"""The URL `Service.open` and the command line take for a plain test database URL.

The service's older store (services/store/db.py) still names an asyncio driver in its URL;
the `database_url` fixture hands out plain `sqlite:///` and `postgresql://` URLs.
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
