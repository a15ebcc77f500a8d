"""What went wrong with the database, decided in one place for sqlite3 and psycopg (D8).

`classify` names a driver's failure, so the database worker knows what to retry (a lost
connection, a deadlock). `translate_error` and `store_error` turn failures into the errors of
`services.errors`, in one line a person can act on: the command line prints it, `deskbell serve`
logs it and retries, the desktop shows it. SQLite reports a locked file, a full disk, a
read-only file or folder, an I/O error and a damaged page each with its own result code; a
locked or busy database is never called damaged: only a failed integrity check or a malformed
page is.

`watch_engine` installs this on a SQLAlchemy engine: every failed statement passes through it,
and a connection that found its file read-only or unreadable is discarded, so the next one opens
the file afresh once the cause is gone (SQLite never upgrades a connection it opened read-only).
"""

from __future__ import annotations

import enum
import errno
import shutil
import sqlite3
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError

from services.errors import (
    DeskbellError,
    StoreBusyError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
    StoreUnavailableError,
    StoreUnreachableError,
)

__all__ = [
    "Failure",
    "classify",
    "is_damage",
    "store_error",
    "translate_error",
    "watch_engine",
]

# SQLite's primary result codes (https://sqlite.org/rescode.html); an extended code keeps the
# primary one in its low byte.
_PERM: Final = 3
_BUSY: Final = 5
_LOCKED: Final = 6
_READONLY: Final = 8
_IOERR: Final = 10
_CORRUPT: Final = 11
_FULL: Final = 13
_CANTOPEN: Final = 14
_AUTH: Final = 23
_NOTADB: Final = 26

_READ_ONLY_ERRNOS: Final = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite said the file itself is damaged (never for locked, busy, full, I/O)."""
    return _code(exc) in (_CORRUPT, _NOTADB)


def _full(where: str) -> StoreFullError:
    return StoreFullError(
        f"the disk holding the database {where} is full; nothing was changed."
        " Free some space and try again"
    )


def _disk_full(where: str) -> bool:
    try:
        return shutil.disk_usage(Path(where).parent).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


_NEARLY_FULL_BYTES: Final = 64 * 1024


def _for_code(code: int | None, detail: str, where: str) -> StoreError | None:
    if code in (_BUSY, _LOCKED):
        return StoreBusyError(
            f"the database {where} is locked by another program; nothing was changed or moved."
            " Try again when that program is done with it"
        )
    if code == _FULL:
        return _full(where)
    if code in (_READONLY, _PERM, _AUTH):
        return StoreReadOnlyError(
            f"the database {where} cannot be written ({detail}); nothing was changed."
            " Make it (with its -wal and -shm files) and its folder writable and try again"
        )
    if code == _CANTOPEN:
        return StoreUnavailableError(
            f"cannot open the database {where} ({detail}): check that its folder exists and"
            " that Deskbell may read and write there"
        )
    if code == _IOERR:
        if _disk_full(where):  # SQLite reports a full disk as an I/O error when mapping -shm
            return _full(where)
        return StoreUnavailableError(
            f"reading or writing the database {where} failed ({detail}); nothing was changed."
            " Check the disk and try again"
        )
    if code in (_CORRUPT, _NOTADB):
        return StoreCorruptError(
            f"the database {where} is damaged ({detail}); nothing was changed. Quit Deskbell"
            " and start it again: it checks the file and keeps a damaged one aside for rescue"
        )
    return None


def _for_os_error(exc: OSError, where: str) -> StoreError:
    detail = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full(where)
    if exc.errno in _READ_ONLY_ERRNOS:
        return StoreReadOnlyError(
            f"Deskbell cannot write in {exc.filename or where} ({detail}); nothing was changed."
            " Make the data folder writable and try again"
        )
    return StoreUnavailableError(
        f"cannot use the database {where} ({detail}); nothing was changed."
        " Check the disk and the data folder and try again"
    )


def store_error(exc: BaseException, *, path: Path | str) -> StoreError | None:
    """The one-line error for a failure of the database or its files, or None when `exc` is
    not one (a constraint, a bug: those keep their own type)."""
    if isinstance(exc, StoreError):
        return exc
    where = str(path)
    if isinstance(exc, sqlite3.Error):
        detail = str(exc) or getattr(exc, "sqlite_errorname", "") or type(exc).__name__
        return _for_code(_code(exc), detail, where)
    if isinstance(exc, OSError):
        return _for_os_error(exc, where)
    return None


def _discards_connection(error: StoreError) -> bool:
    # A connection that met a read-only or unreadable file keeps failing after the cause is
    # gone; a locked or full database is fine to keep using.
    return isinstance(error, StoreReadOnlyError | StoreUnavailableError | StoreCorruptError)


def watch_engine(engine: Engine, *, path: Path | str) -> None:
    """Raise `services.errors` store errors from `engine` instead of driver errors."""

    def on_error(context: ExceptionContext) -> StoreError | None:
        error = store_error(context.original_exception, path=path)
        if error is not None and _discards_connection(error):
            context.is_disconnect = True
        return error

    event.listen(engine, "handle_error", on_error)


# --- any engine: what the database worker retries, and what callers see -----------------


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


def translate_error(
    exc: BaseException, failure: Failure | None = None, *, path: Path | str = "database"
) -> BaseException:
    """The service's error for a driver's `exc` (raise it `from exc`); `exc` itself when the
    failure is not the store's to explain (a bug, bad SQL, an error the work raised).
    `path` names the SQLite file in the message."""
    if isinstance(exc, DeskbellError):
        return exc  # the work's own refusal (PermissionDeniedError is also an OSError)
    failure = failure or classify(exc)
    orig = _driver_error(exc)
    if isinstance(orig, sqlite3.Error | OSError) and failure is not Failure.INTEGRITY:
        known = store_error(orig, path=path)  # full, read-only, I/O, damaged, locked
        if known is not None:
            return known
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
