"""pytest fixtures for a real Dovecot IMAP server (I1). Register as a plugin:
`pytest_plugins = ["tests.support.imap_fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dovecot import DovecotServer, dovecot_missing_reason

__all__ = ["dovecot", "dovecot_server"]


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[DovecotServer]:
    """One Dovecot (TLS and plain ports) shared by a module's tests: starting costs ~0.2 s."""
    reason = dovecot_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = DovecotServer(tls=True)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> DovecotServer:
    """The module's Dovecot, running (a test that stopped it gets it started again)."""
    dovecot_server.start()
    return dovecot_server
