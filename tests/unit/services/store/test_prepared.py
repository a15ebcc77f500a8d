"""Prepared statements return exactly what the same Core statement returns through SQLAlchemy.

Property tests on both engines (issue 9): for generated rows with aware datetimes, JSON, booleans
and NULLs, INSERT ... RETURNING, SELECT and UPDATE ... RETURNING give the same values and
types by `Tx.run` on the DBAPI cursor as by SQLAlchemy's `Connection.execute`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, func, insert, select, text, update

from services.store.database import Database, Tx
from services.store.models import Email, EmailBody, Person
from services.store.prepared import MissingParameterError, Prepared

PERSONS = Person.__table__
EMAILS = Email.__table__
BODIES = EmailBody.__table__

INSERT_PERSON = Prepared(insert(PERSONS).returning(*PERSONS.c))
SELECT_PERSON = Prepared(select(PERSONS).where(PERSONS.c.id == bindparam("pid")))
UPDATE_PERSON = Prepared(
    update(PERSONS).where(PERSONS.c.id == bindparam("pid")).returning(*PERSONS.c)
)
SELECT_IN = Prepared(
    select(PERSONS.c.id, PERSONS.c.dnd_until)
    .where(PERSONS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(PERSONS.c.id)
)
# A literal bound in the statement and an aggregate with a label.
COUNT_KIND = Prepared(
    select(func.count().label("n")).select_from(PERSONS).where(PERSONS.c.kind == "customer")
)

_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
_moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=_zones
)


@st.composite
def persons(draw: st.DrawFn) -> dict[str, Any]:
    """Values for every column of a person; optional columns sometimes left out (defaults)."""
    row: dict[str, Any] = {
        "email": draw(_text),
        "name": draw(_text),
        "kind": draw(st.sampled_from(["user", "customer"])),
        "created_at": draw(_moments),
    }
    optional = {
        "is_admin": st.booleans(),
        "password_hash": st.none() | _text,
        "notify_in_app": st.booleans(),
        "notify_email": st.booleans(),
        "notify_sound": st.booleans(),
        "delay_s": st.none() | st.integers(0, 2**31 - 1),
        "dnd_until": st.none() | _moments,
        "dnd_weekly": st.lists(_json, max_size=4),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            row[key] = draw(strategy)
    return row


def _typed(rows: list[tuple[Any, ...]]) -> list[tuple[tuple[type, Any], ...]]:
    """Values with their exact types, so True and 1 or naive and aware datetimes differ."""
    return [tuple((type(v), v) for v in row) for row in rows]


def _sqlalchemy(tx: Tx, statement: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in tx.conn.execute(statement, params)]


def _check_examples(tx: Tx) -> int:
    checked = 0

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(first=persons(), second=persons())
    def same_as_sqlalchemy(first: dict[str, Any], second: dict[str, Any]) -> None:
        nonlocal checked
        savepoint = tx.conn.begin_nested()
        try:
            ours = tx.run(INSERT_PERSON, first)
            theirs = _sqlalchemy(
                tx, insert(PERSONS).returning(*PERSONS.c), {**first, "email": "x" + first["email"]}
            )
            assert _typed([r[2:] for r in ours]) == _typed([r[2:] for r in theirs])
            pid = ours[0][0]
            assert _typed(tx.run(SELECT_PERSON, {"pid": pid})) == _typed(
                _sqlalchemy(tx, select(PERSONS).where(PERSONS.c.id == pid), {})
            )
            changes = {k: v for k, v in second.items() if k != "email"}
            ours = tx.run(UPDATE_PERSON, {**changes, "pid": pid})
            theirs = _sqlalchemy(
                tx,
                update(PERSONS).where(PERSONS.c.id == bindparam("pid")).returning(*PERSONS.c),
                {**changes, "pid": theirs[0][0]},
            )
            assert _typed([r[2:] for r in ours]) == _typed([r[2:] for r in theirs])
            checked += 1
        finally:
            savepoint.rollback()

    same_as_sqlalchemy()
    return checked


async def test_prepared_rows_equal_sqlalchemy_rows_on_both_engines(database: Database) -> None:
    """Issue 9: UtcDateTime, JSON, booleans and NULLs come out as through SQLAlchemy."""
    assert await database.write(_check_examples) > 0


async def test_expanding_in_and_statement_literals(database: Database) -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def work(tx: Tx) -> tuple[list[Any], list[Any], list[Any]]:
        ids = [
            tx.run(
                INSERT_PERSON,
                {
                    "email": f"p{i}@x",
                    "name": "P",
                    "kind": kind,
                    "created_at": moment,
                    "dnd_until": moment if i % 2 else None,
                },
            )[0][0]
            for i, kind in enumerate(["user", "customer", "customer"])
        ]
        return (
            tx.run(SELECT_IN, {"ids": ids[1:]}),
            tx.run(SELECT_IN, {"ids": ids}),
            tx.run(COUNT_KIND),
        )

    two, three, count = await database.write(work)
    assert [r[1] for r in two] == [moment, None]
    assert [r[1] for r in three] == [None, moment, None]
    assert count == [(2,)]


async def test_run_many_inserts_every_row_and_counts_them(database: Database) -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    rows = [
        {
            "email": f"m{i}@x",
            "name": f"M{i}",
            "kind": "user",
            "created_at": moment,
            "dnd_weekly": [i],
        }
        for i in range(50)
    ]
    insert_many = Prepared(insert(PERSONS))

    def work(tx: Tx) -> tuple[int, list[Any]]:
        count = tx.run_many(insert_many, rows)
        return count, _sqlalchemy(
            tx,
            select(PERSONS.c.email, PERSONS.c.is_admin, PERSONS.c.dnd_weekly).order_by(
                PERSONS.c.id
            ),
            {},
        )

    count, stored = await database.write(work)
    assert count == 50
    assert stored == [(r["email"], False, r["dnd_weekly"]) for r in rows]


async def test_bytes_and_text_statements(database: Database) -> None:
    raw = bytes(range(256))
    insert_email = Prepared(insert(EMAILS).returning(EMAILS.c.id, EMAILS.c.to_addrs))
    insert_body = Prepared(insert(BODIES).returning(BODIES.c.raw))

    def work(tx: Tx) -> list[Any]:
        [(email_id, to_addrs)] = tx.run(
            insert_email,
            {
                "direction": "out",
                "kind": "test",
                "status": "queued",
                "uid": "u1",
                "from_addr": "a@x",
                "created_at": datetime.now(UTC),
            },
        )
        return [*tx.run(insert_body, {"email_id": email_id, "raw": raw}), to_addrs]

    assert await database.write(work) == [(raw,), []]
    plain = Prepared(text("SELECT 1 + 1"))
    assert await database.read(lambda tx: tx.run(plain)) == [(2,)]


async def test_a_missing_parameter_is_one_clear_error(database: Database) -> None:
    with pytest.raises(MissingParameterError, match="pid"):
        await database.read(lambda tx: tx.run(SELECT_PERSON, {}))


async def test_a_naive_datetime_is_refused_as_through_sqlalchemy(database: Database) -> None:
    params = {"email": "n@x", "name": "N", "kind": "user", "created_at": datetime(2026, 1, 1)}
    with pytest.raises(ValueError, match="naive datetime"):
        await database.write(lambda tx: tx.run(INSERT_PERSON, params))
