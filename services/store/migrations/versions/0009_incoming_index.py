"""incoming mail: the sender hold's index takes the direction too (issue 9)

The hold reads one sender's recent incoming mail (`from_addr = ? AND direction = 'in' AND
created_at >= ?`). With an index on (from_addr, created_at) only, SQLite's planner after
ANALYZE preferred ix_emails_direction_created_at, which reads every incoming mail of the
last 25 minutes whoever sent it: the cost of a mail grew with the whole mailbox's traffic.
(from_addr, direction, created_at) answers the look-up from one sender's rows on both engines.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_from_addr_created_at")
        batch_op.create_index(
            "ix_emails_sender_direction_created_at",
            ["from_addr", "direction", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_sender_direction_created_at")
        batch_op.create_index(
            "ix_emails_from_addr_created_at", ["from_addr", "created_at"], unique=False
        )
