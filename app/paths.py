"""Where Deskbell keeps its data (D8): --data-dir, DESKBELL_DATA_DIR, else the per-OS folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from services.errors import InputError, StoreUnavailableError, quoted

__all__ = ["data_dir", "database_url"]


def data_dir(explicit: str | None = None) -> Path:
    """The data folder, created if missing, as an absolute path (messages name it in full)."""
    chosen = explicit or os.environ.get("DESKBELL_DATA_DIR")
    path = (
        Path(chosen).expanduser() if chosen else Path(platformdirs.user_data_dir("Deskbell", False))
    ).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreUnavailableError(
            f"cannot use {quoted(str(path))} as the data folder ({reason})"
        ) from exc
    return path


def database_url(explicit: str | None = None) -> str | None:
    """A shared database for team mode (T1), or None for the local SQLite file."""
    url = explicit or os.environ.get("DESKBELL_DATABASE_URL") or None
    if url is not None:
        from sqlalchemy.engine import make_url  # only in team mode: SQLAlchemy loads late
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise InputError(
                f"{quoted(url)} is not a database URL (like postgresql+asyncpg://host/deskbell)"
            ) from None
    return url
