"""Contacts, mailing lists, subscriptions and suppressions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    op.create_index("ix_contact_email_key", "contact", ["email_key"], unique=True)
    op.create_index("ix_contact_email_hash", "contact", ["email_hash"])

    op.create_table(
        "mailing_list",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        _timestamp("created_at"),
        sa.UniqueConstraint("name", name="uq_mailing_list_name"),
    )

    op.create_table(
        "subscription",
        sa.Column(
            "contact_id",
            sa.Integer(),
            sa.ForeignKey("contact.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "list_id",
            sa.Integer(),
            sa.ForeignKey("mailing_list.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )

    op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        _timestamp("created_at"),
    )
    op.create_index("ix_suppression_email_hash", "suppression", ["email_hash"], unique=True)


def downgrade() -> None:
    op.drop_table("suppression")
    op.drop_table("subscription")
    op.drop_table("mailing_list")
    op.drop_table("contact")
