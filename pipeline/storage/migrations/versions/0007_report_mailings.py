"""Report mailings: each fire of a report's schedule, claimed before sending, with its outcome.

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
    op.create_table(
        "report_mailing",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("schedule", sa.String(length=200), nullable=False),
        sa.Column("occurrence", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.String(length=50), nullable=False),
        sa.Column("period", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("schedule", "occurrence", name="uq_report_mailing_occurrence"),
    )


def downgrade() -> None:
    op.drop_table("report_mailing")
