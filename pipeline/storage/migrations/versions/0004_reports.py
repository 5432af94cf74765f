"""Reports: grouping attributes frozen per delivery, the reason on each event, report indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("department", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("domain", sa.String(length=255), nullable=False, server_default=""))
        batch.add_column(sa.Column("locale", sa.String(length=35), nullable=False, server_default=""))
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("seed", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("reason", sa.String(length=60), nullable=False, server_default=""))
    # Deliveries sent before this revision: their domain is known from the address they went to.
    op.execute(
        "UPDATE delivery SET domain = lower(substr(email, instr(email, '@') + 1)) WHERE email IS NOT NULL"
        if op.get_bind().dialect.name == "sqlite"
        else "UPDATE delivery SET domain = lower(split_part(email, '@', 2)) WHERE email IS NOT NULL"
    )
    op.create_index("ix_delivery_report", "delivery", ["run_id", "department"])
    op.create_index("ix_event_report", "event", ["delivery_id", "kind", "machine", "reason"])
    op.create_index("ix_run_started_at", "run", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_run_started_at", "run")
    op.drop_index("ix_event_report", "event")
    op.drop_index("ix_delivery_report", "delivery")
    with op.batch_alter_table("event") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("delivery") as batch:
        for column in ("seed", "timezone", "locale", "domain", "department"):
            batch.drop_column(column)
