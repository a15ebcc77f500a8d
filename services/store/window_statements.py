"""The window's first-page statements by key (`services.window_reads`), and their SQL for SQLite
compiled ahead into `services/store/window_sql.py`, so the desktop's first window can run them
on plain `sqlite3` before SQLAlchemy is imported.

The stored SQL is generated from these Core statements, never written by hand: after changing
one, or the models under it, run

    .venv/bin/python -m services.store.window_statements

(tests/unit/services/test_first_window.py fails while the stored text differs from what
SQLAlchemy compiles).
"""

from __future__ import annotations

import functools
import itertools
import pprint
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import JSON, Boolean, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from services.domain.model import ConversationKind
from services.store.database import Tx
from services.store.db import DB_FILENAME, head_revision
from services.store.models import Setting, UtcDateTime
from services.store.prepared import Prepared
from services.window_reads import open_page_key

__all__ = ["TxReads", "compiled_for_sqlite", "statements", "write_module"]

_MODULE = Path(__file__).with_name("window_sql.py")

# Every set of kinds the Open Conversations list may be read for (the window's two inboxes,
# the quick switch's all or external only, a caller's own choice): 7, each by page and by ids.
_KIND_SETS: tuple[tuple[ConversationKind, ...], ...] = tuple(
    kinds
    for n in range(1, len(ConversationKind) + 1)
    for kinds in itertools.combinations(ConversationKind, n)
)


# Every stored setting (`settings.load_settings` reads the same), for the default delay.
_SETTINGS = Prepared[tuple[str, str]](select(Setting.key, Setting.value))


@functools.cache
def statements() -> dict[str, Prepared[Any]]:
    """Every statement `services.window_reads` runs, by key (built once, at first use: the
    modules that define them use this one)."""
    from services import conversations, events, inbox_reads
    from services.store import queries

    found: dict[str, Prepared[Any]] = {
        "person_by_email": queries._PERSON_BY_EMAIL,
        "person_by_id": queries._PERSON_BY_ID,
        "unseen": inbox_reads._UNSEEN,
        "direct_names": inbox_reads._DIRECT_NAMES,
        "viewer": inbox_reads._VIEWER,
        "takes_part": queries._SEES,
        "messages_page": inbox_reads._PAGE,
        "messages_by_ids": inbox_reads._BY_IDS,
        "persons_by_ids": inbox_reads._AUTHORS,
        "message_status": inbox_reads._STATUS,
        "conversation_info": conversations._CONVERSATION_INFO,
        "audience": conversations._AUDIENCE,
        "last_position": events._LAST,
        "settings": _SETTINGS,
    }
    for kinds in _KIND_SETS:
        values = tuple(sorted(k.value for k in kinds))
        for by_ids in (False, True):
            found[open_page_key(values, by_ids=by_ids)] = inbox_reads._open_page(values, by_ids)
    return found


class TxReads:
    """`window_reads.Reads` inside a unit of work: each key runs its Core statement."""

    __slots__ = ("_statements", "_tx")

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self._statements = statements()

    def run(self, key: str, params: Mapping[str, Any]) -> list[Any]:
        return self._tx.run(self._statements[key], params)


# --- compiled ahead for the first window ----------------------------------------------------------


def _converter(type_: Any, dialect: Dialect) -> str | None:
    """How `sqlite3`'s value becomes what SQLAlchemy's result processor makes of it."""
    if type_.dialect_impl(dialect).result_processor(dialect, None) is None:
        return None
    for kind, name in ((UtcDateTime, "utc"), (Boolean, "bool"), (JSON, "json")):
        if isinstance(type_, kind):
            return name
    raise TypeError(f"no first-window converter for {type_!r}: add one to first_window.py")


def compiled_for_sqlite() -> dict[
    str, tuple[str, tuple[str, ...], dict[str, Any], tuple[Any, ...]]
]:
    """Each statement as SQLite runs it: (SQL, parameter keys in order, literal values bound
    in the statement, result converters). An expanding list stays `__[POSTCOMPILE_key]`."""
    dialect = sqlite.dialect(paramstyle="qmark")
    out = {}
    for key, prepared in sorted(statements().items()):
        compiled = cast(SQLCompiler, prepared.statement.compile(dialect=dialect))
        if compiled.positiontup is None:
            raise RuntimeError(f"{key}: not compiled positionally")
        binds = compiled.binds
        if any(compiled._bind_processors.get(n) for n in compiled.positiontup):
            raise TypeError(f"{key}: a parameter needs a bind processor; not a first-page read")
        # A value bound in the statement itself goes by its compiled name (`coalesce_1`): its
        # key is anonymous.
        names = tuple(binds[n].key if binds[n].required else n for n in compiled.positiontup)
        literals = {
            n: binds[n].effective_value for n in compiled.positiontup if not binds[n].required
        }
        columns = [c.type for c in getattr(prepared.statement, "exported_columns", ())]
        out[key] = (
            compiled.string,
            names,
            literals,
            tuple(_converter(t, dialect) for t in columns),
        )
    return out


def module_text() -> str:
    """The generated `window_sql.py`: the schema revision it was compiled for and the SQL."""
    return (
        '"""Generated by `python -m services.store.window_statements`: do not edit.\n\n'
        "The first window's statements (services/window_reads.py) compiled for SQLite from\n"
        "their Core form, for a database at schema revision `HEAD_REVISION`, and the database\n"
        "file's name in a data folder.\n"
        '"""\n\n'
        "from typing import Any\n\n"
        f"HEAD_REVISION = {head_revision()!r}\n"
        f"DB_FILENAME = {DB_FILENAME!r}\n\n"
        "STATEMENTS: dict[str, tuple[str, tuple[str, ...], dict[str, Any], tuple[Any, ...]]] = "
        f"{pprint.pformat(compiled_for_sqlite(), width=96, sort_dicts=True)}\n"
    )


def write_module() -> Path:
    """Write `window_sql.py` and format it as the rest of the code (`make check`)."""
    _MODULE.write_text(module_text())
    ruff = Path(sys.executable).with_name("ruff")
    subprocess.run([str(ruff), "format", "--quiet", str(_MODULE)], check=True)
    return _MODULE


if __name__ == "__main__":
    print(f"wrote {write_module()}", file=sys.stderr)
