"""Migration 0010: emails' bytes move to `email_bodies` and back, on both engines (issue 9)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import LargeBinary, bindparam, create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from services.store.db import _alembic_config, _upgrade

BODIES = {1: b"From: a@example.com\r\n\r\none\r\n", 2: None, 3: bytes(range(256)) * 40}


def _engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, poolclass=NullPool)


def _insert_emails(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO emails (id, direction, kind, status, uid, from_addr, to_addrs, subject,"
            " body_text, raw, attempts, created_at) VALUES (:id, 'out', 'notification', 'sent',"
            " :uid, 'a@example.com', '[]', '', '', :raw, 1, '2026-12-01 00:00:00')"
        ).bindparams(bindparam("raw", type_=LargeBinary())),
        [{"id": i, "uid": f"u{i}", "raw": raw} for i, raw in BODIES.items()],
    )


def test_d8_upgrading_from_0009_keeps_every_emails_bytes_and_downgrading_puts_them_back(
    database_url: str,
) -> None:
    """D8: an upgrade keeps the data: every email's bytes are in `email_bodies` after 0010
    (none for an email without bytes), and a downgrade puts them back in `emails.raw`."""
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0009")
        with engine.begin() as conn:
            _insert_emails(conn)
        with engine.begin() as conn:
            _upgrade(conn)
        with engine.begin() as conn:
            moved = conn.exec_driver_sql(
                "SELECT email_id, raw FROM email_bodies ORDER BY email_id"
            ).all()
            assert [(i, bytes(raw)) for i, raw in moved] == [
                (i, raw) for i, raw in BODIES.items() if raw is not None
            ]
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0009")
        with engine.begin() as conn:
            back = conn.exec_driver_sql("SELECT id, raw FROM emails ORDER BY id").all()
        assert [(i, None if raw is None else bytes(raw)) for i, raw in back] == [
            (i, raw) for i, raw in BODIES.items()
        ]
    finally:
        engine.dispose()
