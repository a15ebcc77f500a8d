"""mail engine: the scheduler's pending-due index, the IMAP reader's lease (issue 9)

A partial index of pending deliveries by due time, covering the (recipient, conversation)
pair the scheduler groups by: the due query's cost grows with what is due, never with the
history of emailed and suppressed deliveries, whatever the table's statistics say.

One lease row per mailbox: the process holding it is the one that reads it (I1).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
    op.create_table(
        "imap_reader_leases",
        sa.Column("account", sa.String(length=400), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_imap_reader_leases")),
    )


def downgrade() -> None:
    op.drop_table("imap_reader_leases")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_pending_due")
