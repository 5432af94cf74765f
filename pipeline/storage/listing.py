"""The latest runs with their deliveries counted by status: `comms runs list` and the studio's Runs page.

Read through the driver itself (drivers.direct) in SQL that SQLite and PostgreSQL both take as
written (the only values in it are integers), so listing runs loads neither SQLAlchemy nor
SQLModel, unless the database is not one it can read as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipeline.storage.drivers import direct
from pipeline.storage.statuses import UNFINISHED, no_deliveries

if TYPE_CHECKING:
    from pipeline.workspace.folders import Workspace
    from pipeline.workspace.settings import Settings

_COLUMNS = ("id", "campaign", "department", "audience", "status", "schedule", "recipient_count", "created_at")


@dataclass(frozen=True)
class RunLine:
    """One run as a listing shows it; counts holds every delivery status, zero where there are none."""

    id: int
    campaign: str
    department: str
    audience: str
    status: str
    schedule: str | None
    recipient_count: int
    created_at: datetime | None
    counts: dict[str, int]

    @property
    def left(self) -> int:
        """Deliveries still to go: waiting, being sent, or held for an A/B test's decision."""
        return sum(self.counts[status] for status in UNFINISHED)


def list_runs(ws: Workspace, limit: int = 20) -> list[RunLine]:
    """The latest LIMIT runs, newest first."""
    with _reading(ws.settings) as connection, closing(connection.cursor()) as cursor:
        cursor.execute(f"SELECT {', '.join(_COLUMNS)} FROM run ORDER BY id DESC LIMIT {int(limit)}")
        runs = [dict(zip(_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
        counts = {run["id"]: no_deliveries() for run in runs}
        if runs:
            cursor.execute(
                "SELECT run_id, status, COUNT(*) FROM delivery"
                f" WHERE run_id IN ({', '.join(str(int(run_id)) for run_id in counts)})"
                " GROUP BY run_id, status"
            )
            for run_id, status, count in cursor.fetchall():
                counts[run_id][status] = count
    return [
        RunLine(**(run | {"created_at": _moment(run["created_at"]), "counts": counts[run["id"]]}))
        for run in runs
    ]


def _moment(value: Any) -> datetime | None:
    """A timestamp column as SQLAlchemy reads it: psycopg gives a datetime, sqlite3 the stored text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@contextmanager
def _reading(settings: Settings) -> Iterator[Any]:
    """A DB-API connection on the configured database, at the current schema.

    Straight from the driver when it can be; otherwise the engine's own (raw) connection, once
    engines.connect has refused a database whose schema it cannot use, with its one-line reason.
    """
    connection = direct(settings.database)
    if connection is not None:
        with closing(connection):
            yield connection
        return
    from pipeline.storage.engines import opened

    with opened(settings) as engine, closing(engine.raw_connection()) as raw:
        yield raw
