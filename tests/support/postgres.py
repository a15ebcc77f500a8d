"""A private PostgreSQL cluster for the tests, started once per test session.

Debian's `postgresql` package (packaging/debian-packages.txt) provides the server binaries under
/usr/lib/postgresql/<version>/bin; nothing runs as a system service. `initdb` refuses to run as
root, so as root the cluster is created and started as the `postgres` user, in a folder under
/tmp that user can reach (NOTES.md). The server listens on a unix socket only (no TCP port to
collide with another engineer's cluster), with durability switched off: tests need speed, not
crash safety of the test server.

Each test gets its own database cloned from a migrated template (`CREATE DATABASE ... TEMPLATE`,
about 0.2 s), dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PostgresCluster", "PostgresUnavailable", "find_bin_dir", "start_cluster"]

TEMPLATE_DB = "deskbell_template"
# Only names the socket file (.s.PGSQL.<port>) in our private socket folder: no TCP listener.
_PORT = 5432
_counter = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed, or the cluster would not start."""


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb, or None."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


@dataclass
class PostgresCluster:
    """A running private cluster; `url(name)` gives a plain `postgresql://` URL over its socket."""

    bin_dir: Path
    root: Path
    run_as: str | None
    started_in_s: float = 0.0
    _databases: set[str] = field(default_factory=set)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={_PORT}"

    def _command(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        return [*prefix, *args]

    def admin(self, sql: str) -> None:
        """Run one statement on the `postgres` database, outside a transaction."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, *, template: str = TEMPLATE_DB) -> str:
        """A new database cloned from `template`; returns its name."""
        name = f"t_{os.getpid()}_{next(_counter)}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._databases.add(name)
        return name

    def drop_database(self, name: str) -> None:
        # FORCE ends sessions a failed test left open (PostgreSQL 13+).
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._databases.discard(name)

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and remove its folder."""
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            subprocess.run(
                self._command(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ),
                check=True,
                capture_output=True,
                timeout=120,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{what} failed ({done.returncode}): {done.stderr.strip()}")


def start_cluster(prepare_template: Callable[[str], None]) -> PostgresCluster:
    """initdb and start a private cluster, then create the template database.

    `prepare_template(url)` fills the template (the tests migrate it to the newest schema).

    Raises PostgresUnavailable with the reason when the binaries are missing or the server does
    not start.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(install the Debian package `postgresql`)"
        )
    run_as = None
    # /tmp, not pytest's tmp_path: under root that lives in a folder the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="deskbell-pg-"))
    root.chmod(0o755)
    (root / "data").mkdir()
    (root / "socket").mkdir()
    if os.geteuid() == 0:  # initdb refuses to run as root
        run_as = "postgres"
        try:
            user = pwd.getpwnam(run_as)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("no `postgres` user to run the server as") from None
        for sub in ("data", "socket"):
            os.chown(root / sub, user.pw_uid, user.pw_gid)
    cluster = PostgresCluster(bin_dir=bin_dir, root=root, run_as=run_as)
    started = time.monotonic()
    try:
        _run(
            cluster._command(
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ),
            "initdb",
        )
        options = (
            f"-p {_PORT} -k {cluster.socket_dir} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        _run(
            cluster._command(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(cluster.data_dir),
                "-o",
                options,
                "-l",
                str(cluster.data_dir / "server.log"),
                "-w",
                "-t",
                "120",
                "start",
            ),
            "pg_ctl start",
        )
        cluster.admin(f'CREATE DATABASE "{TEMPLATE_DB}"')
        prepare_template(cluster.url(TEMPLATE_DB))
    except BaseException:
        cluster.stop()
        raise
    cluster.started_in_s = time.monotonic() - started
    return cluster
