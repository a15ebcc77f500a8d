"""`deskbell serve --check`: is this configuration ready to serve? Every check runs (one
problem does not hide the next), nothing is changed and nothing is left running.

Checked: the TLS files load together; each listen address can be bound now; the database
answers and is at this version's schema; the SMTP server answers, greets and takes the login
(the Messaging Center's own test); the IMAP mailbox too, when one is set.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from services.errors import DeskbellError, InputError, StoreError

__all__ = ["Finding", "Target", "check_configuration"]


@dataclass(frozen=True, slots=True)
class Finding:
    ok: bool
    line: str  # what was found, one line


@dataclass(frozen=True, slots=True)
class Target:
    """What `serve` was told to use."""

    data_dir: Path
    database_url: str | None  # None: the data folder's SQLite file
    listen: tuple[tuple[str, str], ...]  # (what, "HOST:PORT"), e.g. ("the API", "0.0.0.0:8080")
    tls: tuple[Path, Path] | None  # (certificate, key)


def _bind(address: str) -> None:
    from services.incoming.listener import parse_listen_address

    host, port = parse_listen_address(address)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot resolve {host}: {exc.strerror}") from None
    for family, kind, proto, _, sockaddr in found:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                raise InputError(f"cannot listen on {address}: {exc.strerror or exc}") from None


async def _finding(what: str, check: Awaitable[str]) -> Finding:
    try:
        return Finding(True, f"{what}: {await check}")
    except DeskbellError as exc:
        return Finding(False, f"{what}: {exc}")


async def _tls(certfile: Path, keyfile: Path) -> str:
    from services.server.tls import server_context

    server_context(certfile=certfile, keyfile=keyfile)
    return f"{certfile} loads with {keyfile}"


async def _listen(address: str) -> str:
    await asyncio.to_thread(_bind, address)
    return f"{address} is free"


async def _schema(url: str) -> str:
    from services.store.db import head_revision, schema_revision

    found, current = await schema_revision(url), head_revision()
    if found is None:
        raise StoreError("the database has no Deskbell schema yet; serve creates it at start")
    if found != current:
        raise StoreError(
            f"the database's schema is at revision {found}, this version's is {current}; "
            "serve migrates an older one at start, a newer one needs a newer Deskbell"
        )
    return f"answers, schema at revision {current}"


async def _mail(target: Target) -> list[Finding]:
    """The SMTP server, and the IMAP mailbox if one is set, with the stored settings."""
    from services.api import Service

    try:
        service = await Service.open(
            data_dir=target.data_dir, url=target.database_url, check_file=False
        )
    except DeskbellError as exc:
        return [Finding(False, f"database: {exc}")]
    try:
        found = [await _finding("SMTP", service.test_smtp())]
        if service.config("imap.host"):
            found.append(await _finding("IMAP", service.test_imap()))
        return found
    finally:
        await service.close()


async def check_configuration(target: Target) -> list[Finding]:
    """One finding per check, in the order they ran."""
    from services.store.db import sqlite_url

    found: list[Finding] = []
    if target.tls is not None:
        found.append(await _finding("TLS", _tls(*target.tls)))
    for what, address in target.listen:
        found.append(await _finding(f"listening for {what}", _listen(address)))
    url = target.database_url or sqlite_url(target.data_dir)
    database = await _finding("database", _schema(url))
    found.append(database)
    if database.ok:  # the mail settings are stored in it
        found.extend(await _mail(target))
    return found
