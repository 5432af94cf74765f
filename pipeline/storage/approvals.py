"""Every approval query by name (the approval table; runs keep the id they were started under)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select

from pipeline.storage.models import Approval, Run
from pipeline.storage.outbox import R, aware

A: Table = Approval.__table__  # type: ignore[attr-defined]


def _approval(row: Any) -> Approval:
    approval = Approval.model_validate(dict(row))
    approval.approved_at = aware(approval.approved_at) if approval.approved_at else None
    return approval


def add_approval(conn: Connection, approval: Approval) -> int:
    """Insert APPROVAL and return its id."""
    values = approval.model_dump(exclude={"id"})
    return int(conn.execute(insert(A).values(values).returning(A.c.id)).scalar_one())


def approval_keys(conn: Connection) -> set[tuple[str, str, str, datetime]]:
    """(campaign, hash, approver, time) of every recorded approval: what tells one sign-off from another."""
    rows = conn.execute(select(A.c.campaign, A.c.content_hash, A.c.approver, A.c.approved_at))
    return {(c, h, who, aware(at)) for c, h, who, at in rows}


def approvals_of(conn: Connection, campaign: str | None = None) -> list[Approval]:
    """Approvals of CAMPAIGN (or of every campaign), newest first."""
    query = select(A).order_by(A.c.approved_at.desc(), A.c.id.desc())
    if campaign is not None:
        query = query.where(A.c.campaign == campaign)
    return [_approval(row) for row in conn.execute(query).mappings()]


def get_approval(conn: Connection, approval_id: int) -> Approval | None:
    row = conn.execute(select(A).where(A.c.id == approval_id)).mappings().first()
    return _approval(row) if row is not None else None


def runs_sent_without_approval(conn: Connection) -> list[Run]:
    """Runs that queued recipients with no approval behind them (approvals were off), oldest first.

    Blocked, missed and failed-to-start runs queue nobody (recipient_count 0), so they are not listed.
    """
    query = select(R).where(R.c.approval_id.is_(None), R.c.recipient_count > 0).order_by(R.c.id)
    return [Run.model_validate(dict(row)) for row in conn.execute(query).mappings()]
