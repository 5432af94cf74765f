"""Approvals bound to a campaign's content hash, and the approval each run was started under.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("approver", sa.String(length=320), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.UniqueConstraint("campaign", "content_hash", "approver", "approved_at", name="uq_approval"),
    )
    op.create_index("ix_approval_campaign", "approval", ["campaign"])
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("approval_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_run_approval", "approval", ["approval_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_constraint("fk_run_approval", type_="foreignkey")
        batch.drop_column("approval_id")
    op.drop_index("ix_approval_campaign", table_name="approval")
    op.drop_table("approval")
