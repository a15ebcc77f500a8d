"""What went wrong with the database, in one line a person can act on (D8).

SQLite reports a locked file, a full disk, a read-only file or folder, an I/O error and a
damaged page each with its own result code. `store_error` turns those (and the OSError of the
file operations around them) into the errors of `services.errors`, so the command line prints
one line, `deskbell serve` logs one line and retries, and the desktop shows one line. A locked
or busy database is never called damaged: only a failed integrity check or a malformed page is.

`watch_engine` installs this on an engine: every failed statement passes through it, and a
connection that found its file read-only or unreadable is discarded, so the next one opens the
file afresh once the cause is gone (SQLite never upgrades a connection it opened read-only).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from services.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
    StoreUnavailableError,
)

__all__ = ["is_damage", "store_error", "watch_engine"]

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
