"""Attribute types, list display names, and double opt-in sign-ups (the consent record).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("mailing_list") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=False, server_default=""))
    op.create_table(
        "contact_field",
        sa.Column("name", sa.String(length=200), primary_key=True),
        sa.Column("type", sa.String(length=10), nullable=False),
        _timestamp("updated_at"),
    )
    op.create_table(
        "signup",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "list_id", sa.Integer(), sa.ForeignKey("mailing_list.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(), nullable=True),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        _timestamp("confirmed_at", nullable=True),
        sa.Column("confirmed_ip_hash", sa.String(length=64), nullable=False),
    )
    op.create_index("ix_signup_list_id", "signup", ["list_id"])
    op.create_index("ix_signup_email_key", "signup", ["email_key"])
    op.create_index("ix_signup_expires_at", "signup", ["expires_at"])


def downgrade() -> None:
    op.drop_table("signup")
    op.drop_table("contact_field")
    with op.batch_alter_table("mailing_list") as batch:
        batch.drop_column("display_name")
