"""Alembic environment: migrations run on the connection engines.upgrade hands over (no ini file)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import pipeline.storage.models  # noqa: F401  (registers every table on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
