"""The database: SQLModel tables, engines for SQLite and PostgreSQL, Alembic migrations, and every outbox
and run query by name.

May import: workspace, types, errors.
"""
