"""pending due index: the scheduler's due query reads pending deliveries only (issue 9)

A partial index of pending deliveries by due time, covering the (recipient, conversation)
pair the scheduler groups by: the due query's cost grows with what is due, never with the
history of emailed and suppressed deliveries, whatever the table's statistics say.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.create_index(
            "ix_deliveries_pending_due",
            ["due_at", "recipient_id", "conversation_id"],
            unique=False,
            sqlite_where=sa.text("state = 'pending'"),
            postgresql_where=sa.text("state = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_pending_due")
