"""email bodies: an email's bytes move out of its `emails` row into `email_bodies` (issue 9)

The outbox's claim and its outcome UPDATEs (sending, sent, retrying, failed) rewrite the
`emails` row; with the email's MIME bytes in that row (overflow pages on SQLite, TOAST on
PostgreSQL), each of those writes carried them. The bytes now have their own table, one row
per email that has bytes, removed with its email (ON DELETE CASCADE).

SQLite drops the column with its own ALTER TABLE ... DROP COLUMN (3.35+), not by Alembic's
batch copy: copying `emails` would drop the old table under `foreign_keys=ON`, whose implicit
DELETE would fail on the deliveries that point at it and empty `email_bodies`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_bodies",
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["emails.id"],
            name=op.f("fk_email_bodies_email_id_emails"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("email_id", name=op.f("pk_email_bodies")),
    )
    op.execute(
        "INSERT INTO email_bodies (email_id, raw) SELECT id, raw FROM emails WHERE raw IS NOT NULL"
    )
    op.drop_column("emails", "raw")


def downgrade() -> None:
    op.add_column("emails", sa.Column("raw", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE emails SET raw = (SELECT b.raw FROM email_bodies b WHERE b.email_id = emails.id)"
    )
    op.drop_table("email_bodies")
