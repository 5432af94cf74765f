"""Report mailings by name: claim a schedule's fire before its report is sent, record how it went.

The claim is an INSERT that the unique (schedule, occurrence) constraint lets succeed once,
on SQLite and PostgreSQL alike: whoever inserts second (a daemon restarted within the
misfire grace, a standby that took over) gets None and sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.storage.models import MailingStatus, ReportMailing

M = ReportMailing.__table__  # type: ignore[attr-defined]


def claim_mailing(
    engine: Engine, *, schedule: str, occurrence: datetime, report: str, period: str, now: datetime
) -> int | None:
    """Claim SCHEDULE's fire at OCCURRENCE in a transaction of its own; its id, or None if already claimed."""
    values = {
        "schedule": schedule,
        "occurrence": occurrence.astimezone(UTC),  # SQLite keeps no zone: every stored time is UTC
        "report": report,
        "period": period,
        "status": MailingStatus.sending,
        "reason": "",
        "claimed_at": now,
    }
    try:
        with engine.begin() as conn:
            return int(conn.execute(insert(M).values(values).returning(M.c.id)).scalar_one())
    except IntegrityError:
        return None


def mailing_status(engine: Engine, schedule: str, occurrence: datetime) -> str | None:
    """What became of SCHEDULE's fire at OCCURRENCE (sending, sent, failed); None if never claimed."""
    with engine.connect() as conn:
        statement = select(M.c.status).where(
            M.c.schedule == schedule, M.c.occurrence == occurrence.astimezone(UTC)
        )
        found = conn.execute(statement).scalar()
    return str(found) if found is not None else None


def finish_mailing(
    engine: Engine, mailing_id: int, status: MailingStatus, reason: str, now: datetime
) -> None:
    """Record the outcome of a claimed mailing."""
    with engine.begin() as conn:
        conn.execute(
            update(M).where(M.c.id == mailing_id).values(status=status, reason=reason[:1000], finished_at=now)
        )


__all__ = ["claim_mailing", "finish_mailing", "mailing_status"]
