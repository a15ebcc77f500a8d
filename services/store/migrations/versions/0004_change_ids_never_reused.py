"""change ids are never reused: AUTOINCREMENT on SQLite's `changes`

Without it SQLite hands out max(id) + 1, so once the hourly purge empties the table the ids
start again from 1, below what every running process has already seen, and the change feed
goes deaf. The rebuilt table keeps its rows, and SQLite's sequence starts past the largest.
PostgreSQL's sequences never go back, so nothing changes there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _rebuild_changes(*, autoincrement: bool) -> None:
    """SQLite cannot alter a column's AUTOINCREMENT: the batch copies the table into one."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "changes", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ) as batch_op:
        batch_op.alter_column("id", existing_type=sa.Integer(), autoincrement=autoincrement)


def upgrade() -> None:
    _rebuild_changes(autoincrement=True)


def downgrade() -> None:
    _rebuild_changes(autoincrement=False)
