"""Runs, deliveries (the outbox) and events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("audience", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=True),
        _timestamp("occurrence"),
        sa.Column("template_hash", sa.String(length=64), nullable=False),
        sa.Column("subject_template", sa.Text(), nullable=False),
        sa.Column("html_template", sa.Text(), nullable=False),
        sa.Column("text_template", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("status_reason", sa.String(), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        sa.UniqueConstraint("schedule", "occurrence", name="uq_run_occurrence"),
    )
    op.create_index("ix_run_campaign", "run", ["campaign"])
    op.create_index("ix_run_status", "run", ["status"])

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "contact_id",
            sa.Integer(),
            sa.ForeignKey("contact.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt_at"),
        _timestamp("lease_until"),
        sa.Column("leased_by", sa.String(length=100), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("last_reply", sa.String(), nullable=False),
        sa.Column("skip_reason", sa.String(), nullable=False),
        _timestamp("first_attempt_at"),
        _timestamp("sent_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("run_id", "contact_id", name="uq_delivery_run_contact"),
    )
    op.create_index("ix_delivery_claim", "delivery", ["run_id", "status", "next_attempt_at"])
    op.create_index("ix_delivery_contact_id", "delivery", ["contact_id"])
    op.create_index("ix_delivery_message_id", "delivery", ["message_id"])
    op.create_index("ix_delivery_sent_at", "delivery", ["sent_at"])

    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Integer(),
            sa.ForeignKey("delivery.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("link_index", sa.Integer(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        _timestamp("created_at", nullable=False),
    )
    op.create_index("ix_event_created_at", "event", ["created_at"])
    op.create_index("ix_event_delivery_id", "event", ["delivery_id"])
    op.create_index("ix_event_kind", "event", ["kind"])


def downgrade() -> None:
    op.drop_table("event")
    op.drop_table("delivery")
    op.drop_table("run")
