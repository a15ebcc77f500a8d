"""changes: which message, item or session a change is about (issue 10's event stream)

The event stream describes each change without another call from the client (a posted
message with its text and author, the messages a person saw, an item's new status), so a
change row says which thing it is about: `subject_id`, read with the row by every process.
Existing rows keep NULL: they are older than any client's cursor worth catching up.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch rebuild of `changes` would have to restate AUTOINCREMENT.
    op.add_column("changes", sa.Column("subject_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("subject_id")
