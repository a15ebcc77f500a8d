"""Leases on the database's clock, and their owners (issue 9: T2, I1).

A lease ends at a time on the database's clock, so processes on hosts whose clocks disagree
still agree on when it is over: on PostgreSQL the server's `statement_timestamp()`; on SQLite
the file is shared by the processes of one host only, so the host's clock (the service's
injected clock, bound as `b_now`) is the database's. Statements built with `db_now()`,
`db_later()` and `as_local()` take the parameters `lease_params(now, span_s)` gives.

An owner is named `host:pid:nonce`, so a lease whose owner is visibly dead on this host is
taken over at once instead of when it runs out.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from services.store.models import UtcDateTime

__all__ = ["as_local", "db_later", "db_now", "instance_id", "lease_params", "owner_dead"]

_PG_NOW = "(statement_timestamp() AT TIME ZONE 'UTC')"


class _DbNow(FunctionElement[datetime]):
    """The database's clock now (naive UTC, as `UtcDateTime` stores it)."""

    type = UtcDateTime()
    inherit_cache = True
    name = "db_now"


class _DbLater(FunctionElement[datetime]):
    """The database's clock now plus `b_span_s` seconds: the end of a lease."""

    type = UtcDateTime()
    inherit_cache = True
    name = "db_later"


class _AsLocal(FunctionElement[datetime]):
    """A time on the database's clock as the same instant on the service's clock (`b_now`)."""

    type = UtcDateTime()
    inherit_cache = True
    name = "as_local"


def _now_param() -> ColumnElement[datetime]:
    return bindparam("b_now", type_=UtcDateTime())


@compiles(_DbNow)
def _db_now_sqlite(element: _DbNow, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(_now_param(), **kw)


@compiles(_DbNow, "postgresql")
def _db_now_pg(element: _DbNow, compiler: SQLCompiler, **kw: Any) -> str:
    return _PG_NOW


@compiles(_DbLater)
def _db_later_sqlite(element: _DbLater, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(bindparam("b_until", type_=UtcDateTime()), **kw)


@compiles(_DbLater, "postgresql")
def _db_later_pg(element: _DbLater, compiler: SQLCompiler, **kw: Any) -> str:
    span = compiler.process(bindparam("b_span_s", type_=Float()), **kw)
    return f"({_PG_NOW} + make_interval(secs => {span}))"


@compiles(_AsLocal)
def _as_local_sqlite(element: _AsLocal, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column, **kw)


@compiles(_AsLocal, "postgresql")
def _as_local_pg(element: _AsLocal, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    local = compiler.process(_now_param(), **kw)
    return f"({compiler.process(column, **kw)} + ({local} - {_PG_NOW}))"


def db_now() -> ColumnElement[datetime]:
    """Now, on the database's clock."""
    return _DbNow()


def db_later() -> ColumnElement[datetime]:
    """The end of a lease of `b_span_s` seconds from now, on the database's clock."""
    return _DbLater()


def as_local(column: ColumnElement[datetime]) -> ColumnElement[datetime]:
    """A time on the database's clock told on the service's clock."""
    return _AsLocal(column)


def lease_params(now: datetime, span_s: float) -> dict[str, Any]:
    """What those expressions need on either engine: the service's now and the span."""
    return {"b_now": now, "b_span_s": span_s, "b_until": now + timedelta(seconds=span_s)}


def instance_id() -> str:
    """host:pid:nonce, so a lease names its owner and a dead owner on this host is noticed."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_dead(owner: str) -> bool:
    """A lease's owner (host:pid:...) is a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or os.name != "posix":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
