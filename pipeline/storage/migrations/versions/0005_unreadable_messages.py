"""Messages in the bounce mailbox that could not be read, kept for an operator.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unreadable_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("location", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_unreadable_message_created_at", "unreadable_message", ["created_at"])


def downgrade() -> None:
    op.drop_table("unreadable_message")
