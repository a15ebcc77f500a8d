"""counters: change positions in commit order, item numbers without collisions

`counters` holds one row per named counter. A transaction that records changes takes their
positions from the "changes" row as its last statement (`UPDATE ... SET value = value + k
RETURNING value`): the row stays locked until that transaction commits, so on PostgreSQL the
positions become visible in the order they were handed out and a reader that asks for
"everything past N" never skips a change committed out of id order. New items take their
number from the "items" row the same way, so concurrent creators never collide. A counter
never goes back: purging old changes leaves it where it is.

Existing changes keep their order (position = id); both counters start past what exists.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    # A plain ADD COLUMN: a batch rebuild of `changes` would have to restate AUTOINCREMENT.
    op.add_column("changes", sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute("UPDATE changes SET position = id")
    op.create_index(op.f("ix_changes_position"), "changes", ["position"], unique=True)
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'changes', coalesce(max(id), 0) FROM changes"
    )
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'items', coalesce(max(number), 0) FROM items"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_changes_position"), table_name="changes")
    with op.batch_alter_table("changes", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("position")
    op.drop_table("counters")
