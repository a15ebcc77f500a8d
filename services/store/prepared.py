"""Hot statements: written in SQLAlchemy Core, compiled once per dialect, run on the DBAPI cursor.

SQLAlchemy's Connection spends ~130 µs a statement building and caching what it runs
(bench/bench_db_drivers.py); the driver itself needs a few. A `Prepared` statement keeps what
SQLAlchemy would compute for it: the SQL string, the parameter order, and the columns' own bind
and result processors, so types such as `UtcDateTime`, JSON and booleans go in and come out
exactly as through SQLAlchemy, at the driver's cost.

    RECENT = Prepared[tuple[int, datetime]](
        select(Message.id, Message.created_at).where(Message.conversation_id == bindparam("c"))
    )
    rows = tx.run(RECENT, {"c": 7})      # inside Database.read/write: list of plain tuples

Parameters are given by the bind parameter's key (`bindparam("c")`) or, for an INSERT or UPDATE
without explicit `.values()`, by column key (as with `Connection.execute`). Column defaults that
SQLAlchemy computes in Python (`default=False`, `default=list`) are applied when the key is
missing; server defaults are the database's. Expanding parameters (`bindparam(...,
expanding=True)`, `column.in_(bindparam(...))`) work but are expanded per call, so they cost
more. Compilation is lazy and cached per dialect (and per set of column keys for INSERT/UPDATE),
safe to share between threads: a race compiles twice, never wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.type_api import TypeEngine
from typing_extensions import TypeVar

__all__ = ["MissingParameterError", "Prepared", "PreparedPlan", "RowT"]

RowT = TypeVar("RowT", bound=tuple[Any, ...], default=tuple[Any, ...])

_Processor = Callable[[Any], Any]
# A missing parameter's value: a column's Python default or a literal bound in the statement.
_Default = Callable[[], Any]


class MissingParameterError(KeyError):
    """A statement's parameter was not given and has no default."""


class PreparedPlan:
    """One statement compiled for one dialect: what `Tx.run` hands to the DBAPI cursor."""

    __slots__ = (
        "_columns",
        "_compiled",
        "_driver_keys",
        "_result",
        "_slots",
        "expanding",
        "positional",
        "sql",
    )

    def __init__(self, compiled: SQLCompiler, columns: Sequence[TypeEngine[Any]]) -> None:
        self._compiled = compiled
        self._columns = tuple(columns)
        self._result: tuple[tuple[int, _Processor], ...] | None = None
        self.expanding = bool(compiled.post_compile_params)
        defaults = _defaults(compiled)
        if self.expanding:
            # The SQL and the parameter order are known only per call (_bind_expanding).
            self.sql: str = compiled.string
            self.positional = compiled.positiontup is not None
            self._driver_keys: tuple[str, ...] = ()
            self._slots: tuple[tuple[str, _Processor | None, _Default | None], ...] = tuple(
                (b.key, None, defaults.get(b.key)) for b in compiled.binds.values()
            )
            return
        state = compiled.construct_expanded_state({b.key: None for b in compiled.binds.values()})
        self.sql = state.statement
        self.positional = state.positiontup is not None
        names: Sequence[str] = (
            state.positiontup if state.positiontup is not None else list(compiled.binds)
        )
        escaped = compiled.escaped_bind_names
        self._driver_keys = tuple(escaped.get(n, n) for n in names)
        # The processors SQLAlchemy itself applies (ExpandedState lists only expanded ones).
        processors = cast(dict[str, _Processor], compiled._bind_processors)
        self._slots = tuple(
            (compiled.binds[n].key, processors.get(n), defaults.get(compiled.binds[n].key))
            for n in names
        )

    def bind(self, params: Mapping[str, Any]) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """The SQL and the driver's parameters for one execution, processors applied."""
        if self.expanding:
            return self._bind_expanding(params)
        values = []
        for key, processor, default in self._slots:
            if key in params:
                value = params[key]
            elif default is not None:
                value = default()
            else:
                raise MissingParameterError(f"the statement needs the parameter {key!r}")
            values.append(value if processor is None else processor(value))
        if self.positional:
            return self.sql, values
        return self.sql, dict(zip(self._driver_keys, values, strict=True))

    def _bind_expanding(
        self, params: Mapping[str, Any]
    ) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        full = dict(params)
        for key, _processor, default in self._slots:
            if key not in full:
                if default is None:
                    raise MissingParameterError(f"the statement needs the parameter {key!r}")
                full[key] = default()
        state = self._compiled.construct_expanded_state(full)
        processors = cast(
            dict[str, _Processor], {**self._compiled._bind_processors, **state.processors}
        )
        processed = {
            name: (processors[name](v) if name in processors else v)
            for name, v in state.parameters.items()
        }
        if state.positiontup is not None:
            return state.statement, [processed[n] for n in state.positiontup]
        escaped = self._compiled.escaped_bind_names
        return state.statement, {escaped.get(n, n): v for n, v in processed.items()}

    def rows(self, cursor: Any, dialect: Dialect) -> list[Any]:
        """Fetch every row from `cursor` as a plain tuple, result processors applied."""
        raw: list[Any] = cursor.fetchall()
        if self._result is None:
            self._result = self._result_processors(cursor.description, dialect)
        if not self._result:
            return raw
        out = []
        for row in raw:
            values = list(row)
            for index, processor in self._result:
                values[index] = processor(values[index])
            out.append(tuple(values))
        return out

    def _result_processors(
        self, description: Sequence[Sequence[Any]] | None, dialect: Dialect
    ) -> tuple[tuple[int, _Processor], ...]:
        if not description or not self._columns:
            return ()
        if len(description) != len(self._columns):
            raise RuntimeError(
                f"the statement returned {len(description)} columns, its Core form "
                f"declares {len(self._columns)}: {self.sql}"
            )
        found = []
        for index, (type_, desc) in enumerate(zip(self._columns, description, strict=True)):
            processor = type_.dialect_impl(dialect).result_processor(dialect, desc[1])
            if processor is not None:
                found.append((index, processor))
        return tuple(found)


def _defaults(compiled: SQLCompiler) -> dict[str, _Default]:
    """Values for parameters a caller may leave out: literals bound in the statement, and the
    Python-side defaults SQLAlchemy would compute before an INSERT or UPDATE."""
    found: dict[str, _Default] = {}
    for columns, attr in (
        (compiled.insert_prefetch, "default"),
        (compiled.update_prefetch, "onupdate"),
    ):
        for column in columns:
            generator = getattr(column, attr)
            if generator is None:
                continue
            if generator.is_scalar:
                found[column.key] = (lambda v: lambda: v)(generator.arg)
            elif generator.is_callable:
                # SQLAlchemy wraps a zero-argument default as `arg(context)`.
                found[column.key] = (lambda f: lambda: f(None))(generator.arg)
    for bind in compiled.binds.values():
        if not bind.required and bind.key not in found:
            found[bind.key] = (lambda b: lambda: b.effective_value)(bind)
    return found


class Prepared(Generic[RowT]):
    """A Core statement run on the DBAPI cursor with SQLAlchemy's own type processing.

    Build it once, at import time of the module that uses it; run it with `Tx.run` or
    `Tx.run_many` inside a unit of work. `RowT` only tells the type checker what a row holds
    (`Prepared[tuple[int, str]](...)`); rows are plain tuples.
    """

    __slots__ = ("_by_keys", "_plans", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        # INSERT and UPDATE compile per set of parameter keys, as SQLAlchemy does.
        self._by_keys = isinstance(statement, ValuesBase)
        self._plans: dict[tuple[Dialect, frozenset[str] | None], PreparedPlan] = {}

    def plan(self, dialect: Dialect, keys: Iterable[str] = ()) -> PreparedPlan:
        """The compiled form for `dialect` (and, for INSERT/UPDATE, these parameter keys).

        Plans are cached per dialect instance, that is per engine (each `Database` has one).
        """
        column_keys = frozenset(keys) if self._by_keys else None
        plan = self._plans.get((dialect, column_keys))
        if plan is None:
            compiled = cast(
                SQLCompiler,
                self.statement.compile(
                    dialect=dialect, column_keys=sorted(column_keys) if column_keys else None
                ),
            )
            plan = PreparedPlan(compiled, _column_types(self.statement))
            self._plans[(dialect, column_keys)] = plan
        return plan


def _column_types(statement: ClauseElement) -> list[TypeEngine[Any]]:
    """The types of the columns a SELECT or a RETURNING clause yields, in order."""
    exported = getattr(statement, "exported_columns", None)
    if exported is None:
        return []
    return [column.type for column in exported]
