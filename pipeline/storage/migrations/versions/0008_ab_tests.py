"""A/B tests: the variant frozen per delivery, and when a run's test is to be decided.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("variant", sa.String(length=100), nullable=False, server_default=""))
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("ab_decide_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_run_ab_decide_at", "run", ["ab_decide_at"])


def downgrade() -> None:
    op.drop_index("ix_run_ab_decide_at", table_name="run")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("ab_decide_at")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("variant")
