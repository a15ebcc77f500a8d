"""messages.client_id and team_writes: a team write sent twice is applied once (issue 11, T5)

A desktop in team mode gives each message it posts an id of its own (a uuid4) and sends it
again after a lost answer: the server finds the message by it (`messages.client_id`, unique;
NULL for everything else). The desktop's replica keeps the writes it has not yet sent, in
order, in `team_writes`, written in the transaction that applied each write locally.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("client_id", sa.String(length=36), nullable=True))
    op.create_index("ix_messages_client_id", "messages", ["client_id"], unique=True)
    op.create_table(
        "team_writes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_writes")),
        sa.UniqueConstraint("client_id", name=op.f("uq_team_writes_client_id")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("team_writes")
    op.drop_index("ix_messages_client_id", table_name="messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("client_id")
