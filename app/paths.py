"""Where Deskbell keeps its data (D8): --data-dir, DESKBELL_DATA_DIR, else the per-OS folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["data_dir", "database_url"]


def data_dir(explicit: str | None = None) -> Path:
    chosen = explicit or os.environ.get("DESKBELL_DATA_DIR")
    path = (
        Path(chosen).expanduser() if chosen else Path(platformdirs.user_data_dir("Deskbell", False))
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(explicit: str | None = None) -> str | None:
    """A shared database for team mode (T1), or None for the local SQLite file."""
    return explicit or os.environ.get("DESKBELL_DATABASE_URL") or None
