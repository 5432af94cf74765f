"""Engines, sessions and the schema version: how comms talks to SQLite and PostgreSQL.

Every command except `comms db upgrade` goes through `connect`, which refuses a
database whose schema is behind the code, so nothing ever writes into tables
that are missing a column it expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from pipeline.errors import DatabaseError, SchemaOutdated
from pipeline.workspace.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Writers wait this long for SQLite's single write lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _with_driver(url: str) -> str:
    """PostgreSQL URLs without a driver get psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the tracking server read while a worker writes; NORMAL sync is safe in WAL mode
    # (a power cut may lose the last commits, never corrupt the file) and several times faster.
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for URL: SQLite in WAL mode with foreign keys enforced, PostgreSQL through psycopg 3."""
    engine = create_engine(_with_driver(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def display_url(engine: Engine) -> str:
    """The engine's URL with any password masked, for messages."""
    return engine.url.render_as_string(hide_password=True)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The schema revision this code needs."""
    head = _scripts().get_current_head()
    assert head is not None, "pipeline/storage/migrations/versions has no revisions"
    return head


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: no comms tables yet
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _unreachable(engine: Engine, exc: OperationalError) -> DatabaseError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return DatabaseError(f"cannot use the database {display_url(engine)}: {reason}")


def schema_status(engine: Engine) -> SchemaStatus:
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    return SchemaStatus(current=current, head=head_revision())


def upgrade(url: str) -> SchemaStatus:
    """Bring the database at URL to the current schema; returns the status it was in before."""
    engine = make_engine(url)
    try:
        before = schema_status(engine)
        with engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                # Batch migrations copy and drop tables; with foreign keys on, the drop would
                # cascade into the rows that point at them.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before
    finally:
        engine.dispose()


def _is_known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


@contextmanager
def opened(settings: Settings) -> Iterator[Engine]:
    """connect() for one with block: the engine's connections are closed when it ends."""
    engine = connect(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def connect(settings: Settings) -> Engine:
    """An engine on the configured database, refused with SchemaOutdated unless the schema is current."""
    engine = make_engine(settings.database.url)
    status = schema_status(engine)
    if status.current is not None and not _is_known(status.current):
        engine.dispose()
        raise SchemaOutdated(
            f"database is at revision {status.current}, which this comms does not know: "
            "it was upgraded by a newer version"
        )
    if not status.up_to_date:
        engine.dispose()
        current = status.current or "none (empty database)"
        raise SchemaOutdated(
            f"database is at revision {current}, code needs {status.head}: run `comms db upgrade`"
        )
    return engine


def analyze(engine: Engine, tables: tuple[str, ...]) -> None:
    """Refresh the planner's statistics for TABLES after a bulk load.

    Until autovacuum gets to it, PostgreSQL plans an audience over a freshly loaded
    contact table as if it were nearly empty, and picks nested loops that never finish.
    """
    with engine.begin() as connection:
        for table in tables:
            connection.exec_driver_sql(f"ANALYZE {table}")


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends normally, rolled back if it raises.

    Objects stay readable after the commit (expire_on_commit=False) so callers can print them.
    """
    with Session(engine, expire_on_commit=False) as current:
        try:
            yield current
            current.commit()
        except BaseException:
            current.rollback()
            raise


__all__ = [
    "SchemaStatus",
    "analyze",
    "connect",
    "display_url",
    "head_revision",
    "make_engine",
    "schema_status",
    "session",
    "upgrade",
]
