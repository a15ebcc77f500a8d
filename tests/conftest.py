"""Shared test set-up: real SMTP and IMAP servers as fixtures, a file keyring, offscreen Qt."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import pytest

# Qt without a display, and the binding qasync must pick (NOTES.md).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
# Tests need a keyring backend that works without a Secret Service (NOTES.md); the app never
# falls back to plain text, only the tests choose this.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="deskbell-test-keyring-"))

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.imap_fixtures",
    "tests.support.databases",
]


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[object]:
    """A Service with a hand-driven clock on a fresh database, SQLite then PostgreSQL (see
    tests/support/world.py and tests/support/databases.py)."""
    from tests.support.world import open_service

    svc = await open_service(database_url)
    try:
        yield svc
    finally:
        await svc.close()
