"""Engines, sessions and the schema version: how comms talks to SQLite and PostgreSQL.

Every command except `comms db upgrade` goes through `connect` (or drivers.direct, which
checks the same), which refuses a database whose schema is behind the code, so nothing ever
writes into tables that are missing a column it expects. That check reads `alembic_version` and
compares it with drivers.HEAD_REVISION; Alembic itself (11 MB and a sixth of a command's
start-up) is loaded only to migrate, or to say what an unexpected revision is.

A database that stops answering must not hang a worker: PostgreSQL connections carry a
connect timeout, server-side statement and idle-in-transaction timeouts and TCP keepalives,
and a watchdog thread abandons (shuts the socket of) any statement whose answer has not come
by the time the server would have cancelled it, so the caller gets an error instead of
waiting forever. `ride_out` retries such errors with backoff for `[database] outage_s`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from pipeline.errors import DatabaseError, SchemaOutdated
from pipeline.storage.drivers import (
    HEAD_REVISION,
    REVISION_QUERY,
    VERSION_TABLE,
    first_line,
    postgres_arguments,
    sqlite_pragmas,
    unreachable,
    with_driver,
)
from pipeline.workspace.settings import Database, Settings, shown_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

log = logging.getLogger("comms.database")

T = TypeVar("T")

# ride_out's waits between attempts: doubling from the first to the last.
_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0


def _sqlite_pragmas(busy_timeout_s: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in sqlite_pragmas(busy_timeout_s):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return on_connect


class _Watchdog:
    """Abandons PostgreSQL statements whose answer is overdue, by shutting their socket down.

    libpq has no client-side timeout: a server (or proxy, or NAT) that keeps the connection open
    but never answers leaves the caller blocked for good, and statement_timeout cannot help
    because the server never saw the statement. Each statement, commit and rollback arms a
    deadline for its connection; a few times a second the watchdog shuts down the socket of any
    connection still busy past its deadline, which turns the wait into a disconnect error
    (and SQLAlchemy then discards the pool's other connections, made before the silence).
    One per process, for every engine: its thread lives as long as the process.
    """

    _TICK_S = 0.25

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, float, weakref.ref[Any]]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_connection: Any, limit_s: float) -> None:
        entry = (time.monotonic() + limit_s, limit_s, weakref.ref(dbapi_connection))
        with self._lock:
            self._armed[id(dbapi_connection)] = entry
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="comms-db-watchdog", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self._TICK_S)
            now = time.monotonic()
            with self._lock:
                overdue = [(key, entry) for key, entry in self._armed.items() if entry[0] < now]
                for key, _ in overdue:
                    del self._armed[key]
            for _, (_, limit_s, ref) in overdue:
                connection = ref()
                if connection is not None and _busy(connection):
                    log.warning("no answer from the database in %.0f s: abandoning the connection", limit_s)
                    _shut_down(connection)


_WATCHDOG = _Watchdog()


def _busy(connection: Any) -> bool:
    """True while a psycopg connection waits for the server's answer to a command."""
    try:
        return connection.info.transaction_status.name == "ACTIVE" and not connection.closed
    except Exception:  # a connection closing under us is not busy
        return False


def _shut_down(connection: Any) -> None:
    try:
        fd = connection.pgconn.socket
        # A duplicate of the descriptor: shutdown(2) acts on the socket itself, so psycopg's blocked
        # wait sees end-of-file, while the descriptor stays psycopg's to close.
        with socket.socket(fileno=socket.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed: nothing left to unblock
        log.debug("could not shut down a database socket", exc_info=True)


def _watch_statements(engine: Engine, limit_s: float) -> None:
    def arm(conn: Any, *_args: Any) -> None:
        if not conn.invalidated:  # an invalidated connection would reconnect on `.connection`
            _WATCHDOG.arm(conn.connection.dbapi_connection, limit_s)

    event.listen(engine, "before_cursor_execute", arm)
    event.listen(engine, "commit", arm)
    event.listen(engine, "rollback", arm)


def make_engine(url: str, limits: Database | None = None) -> Engine:
    """An engine for URL: SQLite in WAL mode with foreign keys enforced, PostgreSQL through psycopg 3
    with the timeouts of LIMITS ([database] settings; their defaults when None)."""
    limits = limits or Database()
    url = with_driver(url)
    if url.startswith("postgresql"):
        engine = create_engine(url, connect_args=postgres_arguments(limits))
        _watch_statements(engine, limits.statement_timeout_s + limits.connect_timeout_s)
        return engine
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(limits.busy_timeout_s))
    return engine


def is_outage(exc: BaseException) -> bool:
    """True when EXC says the database is out of reach for now (down, restarting, silent, locked),
    rather than that the statement is wrong."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite's OperationalError also means "no such table"; only a held lock passes.
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)
    return True


def reason(exc: DBAPIError) -> str:
    """The driver's first line (refused, closed, timed out), without the SQL that follows."""
    return first_line(exc.orig or exc)


def ride_out(engine: Engine, limits: Database, attempt: Callable[[], T]) -> T:
    """ATTEMPT (one transaction, safe to repeat), retried with backoff while the database is out of
    reach, for up to LIMITS.outage_s; then DatabaseError with one line."""
    started: float | None = None
    wait_s = _RETRY_FIRST_S
    while True:
        try:
            result = attempt()
        except DBAPIError as exc:
            if not is_outage(exc):
                raise
            now = time.monotonic()
            if started is None:
                started = now
                log.warning(
                    "database %s unreachable, retrying for up to %g s: %s",
                    display_url(engine),
                    limits.outage_s,
                    reason(exc),
                )
            left = started + limits.outage_s - now
            if left <= 0:
                raise DatabaseError(
                    f"the database {display_url(engine)} was unreachable for {limits.outage_s:g} s "
                    f"([database] outage_s): {reason(exc)}"
                ) from None
            time.sleep(min(wait_s, left))
            wait_s = min(wait_s * 2, _RETRY_MAX_S)
            continue
        if started is not None:
            log.warning("database %s reachable again", display_url(engine))
        return result


def display_url(engine: Engine) -> str:
    """The engine's URL with any password masked, for messages: as settings.shown_url masks it,
    so that drivers.direct words a database it cannot reach the same way."""
    return shown_url(engine.url.render_as_string(hide_password=False))


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: no comms tables yet
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _current_revision(connection: Connection) -> str | None:
    """The revision Alembic recorded in the database; None before the first upgrade."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    revision = connection.execute(text(REVISION_QUERY)).scalar()
    return str(revision) if revision is not None else None


def schema_status(engine: Engine) -> SchemaStatus:
    try:
        with engine.connect() as connection:
            current = _current_revision(connection)
    except OperationalError as exc:
        raise unreachable(display_url(engine), exc.orig or exc) from None
    return SchemaStatus(current=current, head=HEAD_REVISION)


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
            from alembic import command

            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before
    finally:
        engine.dispose()


def _is_known(revision: str) -> bool:
    from alembic.util import CommandError

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
    engine = make_engine(settings.database.url, settings.database)
    status = schema_status(engine)
    if status.up_to_date:
        return engine
    engine.dispose()
    if status.current is not None and not _is_known(status.current):
        raise SchemaOutdated(
            f"database is at revision {status.current}, which this comms does not know: "
            "it was upgraded by a newer version"
        )
    current = status.current or "none (empty database)"
    raise SchemaOutdated(
        f"database is at revision {current}, code needs {status.head}: run `comms db upgrade`"
    )


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
    from sqlmodel import Session

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
    "is_outage",
    "make_engine",
    "reason",
    "ride_out",
    "schema_status",
    "session",
    "upgrade",
]
