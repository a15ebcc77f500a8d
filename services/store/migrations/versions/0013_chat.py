"""the customer chat: used chat links, widget codes, who is in the chat now (issue 12)

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_link_uses",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_chat_link_uses")),
    )
    op.create_index(
        op.f("ix_chat_link_uses_expires_at"), "chat_link_uses", ["expires_at"], unique=False
    )
    op.create_table(
        "chat_codes",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_chat_codes")),
    )
    op.create_index(
        op.f("ix_chat_codes_window_start"), "chat_codes", ["window_start"], unique=False
    )
    op.create_table(
        "chat_presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_chat_presence_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_presence")),
    )
    op.create_index(
        op.f("ix_chat_presence_person_id"), "chat_presence", ["person_id"], unique=False
    )
    op.create_index(
        op.f("ix_chat_presence_expires_at"), "chat_presence", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_chat_presence_expires_at"), table_name="chat_presence")
    op.drop_index(op.f("ix_chat_presence_person_id"), table_name="chat_presence")
    op.drop_table("chat_presence")
    op.drop_index(op.f("ix_chat_codes_window_start"), table_name="chat_codes")
    op.drop_table("chat_codes")
    op.drop_index(op.f("ix_chat_link_uses_expires_at"), table_name="chat_link_uses")
    op.drop_table("chat_link_uses")
