"""What a driver's error means, decided in one place for sqlite3 and psycopg.

`classify` names the failure (the database worker retries on some); `translate_error` turns it
into the service's own error (services/errors.py) that callers and people see. Both accept
SQLAlchemy's wrapped errors (`DBAPIError`) and the raw driver errors `Tx.run` raises alike.
"""

from __future__ import annotations

import enum

from sqlalchemy.exc import DBAPIError

from services.errors import StoreBusyError, StoreConflictError, StoreUnreachableError

__all__ = ["Failure", "classify", "translate_error"]


class Failure(enum.Enum):
    LOST = "the connection to the database is gone"
    BUSY = "another writer holds a lock"
    RETRY = "a serialization failure or deadlock: the same work may simply run again"
    INTEGRITY = "a constraint refused the change"
    OTHER = "anything else: a bug or bad SQL, passed on unchanged"


# SQLite result codes (the low byte of an extended code): https://sqlite.org/rescode.html
_SQLITE = {5: Failure.BUSY, 6: Failure.BUSY, 19: Failure.INTEGRITY}
# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected; lock_not_available,
# query_canceled (lock_timeout / statement_timeout); admin and crash shutdowns.
_PG_STATES = {
    "40001": Failure.RETRY,
    "40P01": Failure.RETRY,
    "55P03": Failure.BUSY,
    "57014": Failure.BUSY,
    "57P01": Failure.LOST,
    "57P02": Failure.LOST,
    "57P03": Failure.LOST,
}
_PG_CLASSES = {"08": Failure.LOST, "23": Failure.INTEGRITY}


def _driver_error(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def classify(exc: BaseException, *, connection_broken: bool = False) -> Failure:
    """Name the failure behind `exc`. `connection_broken`: the worker saw its connection die
    (psycopg reports a dropped socket as an OperationalError without a SQLSTATE)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Failure.LOST
    orig = _driver_error(exc)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _SQLITE.get(code & 0xFF, Failure.OTHER)
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return _PG_STATES.get(state) or _PG_CLASSES.get(state[:2], Failure.OTHER)
    if connection_broken:
        return Failure.LOST
    return Failure.OTHER


def translate_error(exc: BaseException, failure: Failure | None = None) -> BaseException:
    """The service's error for a driver's `exc` (raise it `from exc`); `exc` itself when the
    failure is not the store's to explain (a bug, bad SQL, an error the work raised)."""
    failure = failure or classify(exc)
    detail = str(_driver_error(exc)).strip().splitlines()[0] if str(exc).strip() else ""
    if failure is Failure.LOST:
        return StoreUnreachableError(
            "the database server hung up or did not answer; the change was not made, try again"
        )
    if failure in (Failure.BUSY, Failure.RETRY):
        return StoreBusyError("the database stayed busy with other changes; try again")
    if failure is Failure.INTEGRITY:
        return StoreConflictError(f"that clashes with what is stored ({detail})")
    return exc
