"""pytest fixtures for real SMTP servers.

Register once in tests/conftest.py: `pytest_plugins = ["tests.support.fixtures"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smtpd import SmtpServer
from tests.support.tls import CertBundle, make_certificates

__all__ = ["smtp_certificates", "smtp_server", "smtp_starttls_server", "smtp_tls_server"]


@pytest.fixture(scope="session")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    """A test CA and a server certificate for 127.0.0.1/localhost; `.cafile` for clients."""
    return make_certificates(directory=tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP on 127.0.0.1 (a local relay); `.handler` collects and misbehaves."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp_starttls_server(smtp_certificates: CertBundle) -> Iterator[SmtpServer]:
    """SMTP that requires STARTTLS (port 587 style), certificate from `smtp_certificates`."""
    with SmtpServer(tls=smtp_certificates) as server:
        yield server


@pytest.fixture
def smtp_tls_server(smtp_certificates: CertBundle) -> Iterator[SmtpServer]:
    """SMTP over implicit TLS (port 465 style), certificate from `smtp_certificates`."""
    with SmtpServer(tls=smtp_certificates, implicit_tls=True) as server:
        yield server
