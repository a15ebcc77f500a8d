"""Shared test set-up: real SMTP and IMAP servers as fixtures, a file keyring, offscreen Qt."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

# Qt without a display, and the binding qasync must pick (NOTES.md).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
# Tests need a keyring backend that works without a Secret Service (NOTES.md); the app never
# falls back to plain text, only the tests choose this.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
# The keyring file and the default data folder live under XDG_DATA_HOME: one of its own for each
# test process. An xdist worker inherits the controller's environment, so it must not keep the
# controller's folder (the workers would share one keyring file and one data folder).
if "PYTEST_XDIST_WORKER" in os.environ or "XDG_DATA_HOME" not in os.environ:
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="deskbell-test-keyring-")

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.imap_fixtures",
    "tests.support.databases",
]


@pytest.fixture(autouse=True)
def _root_logging_as_it_was() -> Iterator[None]:
    """A command line run in this process (`app.cli.main`, `serve`'s log set-up) points the
    root logger at that test's captured stderr; put it back, or a later test's log lines go to
    a closed file ("Logging error: I/O operation on closed file")."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


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
