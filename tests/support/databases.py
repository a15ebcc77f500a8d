"""pytest fixtures for a fresh, migrated database per test, on SQLite and on PostgreSQL.

Registered in tests/conftest.py (`pytest_plugins`). A test that should hold on both engines
takes `database_url` (or `database`, a `Database` opened on it): it runs twice, `[sqlite]` and
`[postgresql]`. `postgres_url` is PostgreSQL only. Both hand out plain URLs (`sqlite:///...`, `postgresql://...`).

Missing PostgreSQL: with `CI=true` the test fails (CI must never pass by skipping the second
engine); elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.store.database import Database
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster

__all__ = [
    "database",
    "database_url",
    "migrate",
    "postgres_cluster",
    "postgres_url",
    "sqlite_only",
    "sqlite_template",
]

# For a test about SQLite itself (its file, its write lock, another sqlite3 connection): the
# `database_url` fixture, and every fixture built on it, gives SQLite only.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def migrate(url: str) -> None:
    """Bring the database at a plain `sqlite:///` or `postgresql://` URL to the newest schema,
    with the app's own migrations."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from services.store.db import _upgrade

    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            _upgrade(conn)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's private PostgreSQL cluster with a migrated template database."""
    try:
        cluster = start_cluster(migrate)
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL for the second engine: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL is not available here: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A plain `postgresql://` URL of a new database cloned from the migrated template."""
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; tests get copies."""
    path = tmp_path_factory.mktemp("sqlite-template") / "deskbell.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh migrated database on each engine in turn: `sqlite:///...` or `postgresql://...`."""
    if request.param == "sqlite":
        path = tmp_path / "deskbell.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A `Database` open on `database_url` (so on each engine in turn), closed after the test."""
    db = await Database.open(database_url)
    try:
        yield db
    finally:
        await db.close()
