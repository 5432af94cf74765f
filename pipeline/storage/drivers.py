"""How comms opens its database at the driver level (sqlite3, psycopg), and the schema it needs.

The SQLAlchemy engines (pipeline.storage.engines) are built from the settings here, and so is
`direct`, a plain DB-API connection for the commands that only read a few rows and are typed
many times a day (`comms runs list`): SQLAlchemy and SQLModel are two thirds of such a
command's start-up (0.4 s of CPU and 30 MB), for one SELECT.

`direct` takes only the ordinary road: a database it can open that is at HEAD_REVISION. A
schema that is missing, behind or ahead, and a URL form it does not know, are left to
engines.connect, whose errors say what is wrong, so there is one place that words them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipeline.errors import DatabaseError
from pipeline.workspace.settings import shown_url

if TYPE_CHECKING:
    from pipeline.workspace.settings import Database

# The newest revision in migrations/versions: the schema this code needs. A new migration moves it
# (tests/audience/test_migrations.py holds it equal to Alembic's head).
HEAD_REVISION = "0008"
# Where Alembic records a database's revision (its default; env.py keeps it), and how it is read.
VERSION_TABLE = "alembic_version"
REVISION_QUERY = f"SELECT version_num FROM {VERSION_TABLE}"

# Keepalive probes after [database] keepalive_idle_s: this far apart, this many unanswered = dead.
_KEEPALIVE_INTERVAL_S = 10
_KEEPALIVE_COUNT = 3


SQLITE_CACHE_KIB = 512  # each SQLite connection's page cache (sqlite_pragmas)


def sqlite_pragmas(busy_timeout_s: float) -> tuple[str, ...]:
    """What every SQLite connection is set to before use.

    The busy timeout comes first, so that the others wait for a lock as long as it says (not
    sqlite3's default of 5 s). WAL lets the tracking server read while a worker writes; NORMAL
    sync is safe in WAL mode (a power cut may lose the last commits, never corrupt the file) and
    several times faster. The page cache is SQLITE_CACHE_KIB a connection rather than 2 MB: it
    fills as the database grows, in every connection of every process, so a sender's memory grew
    with the audience; pages it misses come from the operating system's file cache, and imports
    of 300,000 rows measured no slower (the importer enlarges it while it writes a batch).
    """
    return (
        f"busy_timeout={int(busy_timeout_s * 1000)}",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"cache_size=-{SQLITE_CACHE_KIB}",
    )


def postgres_arguments(limits: Database) -> dict[str, Any]:
    """libpq connection parameters: every wait on the server has an end."""
    statement_ms = int(limits.statement_timeout_s * 1000)
    idle_ms = int(limits.idle_in_transaction_timeout_s * 1000)
    return {
        "connect_timeout": max(1, round(limits.connect_timeout_s)),
        "options": f"-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={idle_ms}",
        "keepalives": 1,
        "keepalives_idle": limits.keepalive_idle_s,
        "keepalives_interval": _KEEPALIVE_INTERVAL_S,
        "keepalives_count": _KEEPALIVE_COUNT,
    }


def with_driver(url: str) -> str:
    """PostgreSQL URLs without a driver get psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def first_line(exc: BaseException) -> str:
    """The driver's first line (refused, locked, timed out), without the SQL that follows."""
    return str(exc).strip().partition("\n")[0] or type(exc).__name__


def unreachable(where: str, exc: BaseException) -> DatabaseError:
    """What a person is told when the database at WHERE (its URL, password masked) cannot be used."""
    return DatabaseError(f"cannot use the database {where}: {first_line(exc)}")


def direct(limits: Database) -> Any | None:
    """A driver connection on LIMITS.url if it holds HEAD_REVISION; None for engines.connect to judge.

    DatabaseError, as the engine would word it, when the database cannot be reached or is locked:
    asking the engine again would only wait as long a second time.
    """
    url = with_driver(limits.url)
    if url.startswith("postgresql+psycopg://"):
        import psycopg
        from psycopg.errors import UndefinedTable

        uri = "postgresql://" + url.partition("://")[2]
        return _at_head(
            url,
            lambda: psycopg.connect(uri, autocommit=True, **postgres_arguments(limits)),
            psycopg.Error,
            lambda exc: isinstance(exc, UndefinedTable),
        )
    path = url.removeprefix("sqlite:///")
    # A file that is not there is left to the engine, which makes it and says it is empty.
    if url.startswith("sqlite:////") and "?" not in url and Path(path).is_file():
        return _at_head(
            url,
            lambda: _sqlite(path, limits.busy_timeout_s),
            sqlite3.Error,
            lambda exc: "no such table" in str(exc),
        )
    return None


def _sqlite(path: str, busy_timeout_s: float) -> sqlite3.Connection:
    connection = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True)
    try:
        for pragma in sqlite_pragmas(busy_timeout_s):
            connection.execute(f"PRAGMA {pragma}")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def _at_head(
    url: str,
    connect: Callable[[], Any],
    errors: type[Exception],
    missing_table: Callable[[Exception], bool],
) -> Any | None:
    try:
        connection = connect()
    except errors as exc:
        raise unreachable(shown_url(url), exc) from None
    try:
        with closing(connection.cursor()) as cursor:
            cursor.execute(REVISION_QUERY)
            revisions = [row[0] for row in cursor.fetchall()]
    except errors as exc:
        connection.close()
        if missing_table(exc):
            return None
        raise unreachable(shown_url(url), exc) from None
    if revisions == [HEAD_REVISION]:
        return connection
    connection.close()
    return None
