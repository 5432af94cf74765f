"""Runs as the operator watches and steers them: list, show, pause, resume, cancel, retry.

Light on purpose: nothing here assembles or sends, so `comms runs list` loads only the storage layer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine

from pipeline.delivery.verdicts import is_retryable
from pipeline.errors import RunError
from pipeline.storage import approvals, outbox
from pipeline.storage.engines import opened
from pipeline.storage.models import Approval, Run, utcnow
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

_DONE = (DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.skipped, DeliveryStatus.cancelled)
_RATE_WINDOW = timedelta(seconds=60)


log = logging.getLogger("comms.runs")


def describe_transport(settings: Settings) -> str:
    """Where messages go, in words for a confirmation prompt (no password: there is none in the URL)."""
    config = settings.transport
    if config.kind == "smtp":
        url = urlsplit(config.url or "")
        where = f"{url.hostname}:{url.port or 'default port'}"
        return f"smtp {where} ({config.security}, {config.connections} connections)"
    if config.kind == "file":
        return f"file: .eml files in {config.path}/"
    return "console"


def get_run(engine: Engine, run_id: int) -> Run:
    with engine.connect() as conn:
        run = outbox.get_run(conn, run_id)
    if run is None:
        raise RunError(f"no run {run_id}")
    return run


# -- looking at runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    run: Run
    counts: dict[str, int]
    rate_per_s: float | None  # recent sending rate (last minute while sending, else the average)
    eta_s: float | None
    errors: list[outbox.DeliveryError] = field(default_factory=list)
    approval: Approval | None = None  # the approval it was started under

    @property
    def remaining(self) -> int:
        return self.counts[DeliveryStatus.queued] + self.counts[DeliveryStatus.sending]

    @property
    def waiting_for_decision(self) -> bool:
        """An A/B test's arms are out and the rest of the audience is held for the decision."""
        return bool(self.counts[DeliveryStatus.held]) and not self.remaining


def show_run(ws: Workspace, run_id: int | None = None, *, errors: int = 5) -> RunReport:
    """RUN_ID's report; without one, the latest run's (what an operator wants after `comms send`)."""
    with opened(ws.settings) as engine, engine.connect() as conn:
        if run_id is None:
            latest = outbox.latest_run(conn)
            if latest is None:
                raise RunError("no runs yet: start one with `comms send CAMPAIGN`")
            run_id = latest.id or 0
        run = outbox.get_run(conn, run_id)
        if run is None:
            raise RunError(f"no run {run_id}")
        counts = outbox.run_counts(conn, run_id)
        now = utcnow()
        rate = None
        if run.status == RunStatus.sending:
            recent = outbox.sent_between(conn, run_id, now - _RATE_WINDOW, now)
            rate = recent / _RATE_WINDOW.total_seconds() if recent else None
        if rate is None and (span := outbox.sending_span(conn, run_id)):
            seconds = (span[1] - span[0]).total_seconds()
            rate = counts[DeliveryStatus.sent] / seconds if seconds > 0 else None
        remaining = counts[DeliveryStatus.queued] + counts[DeliveryStatus.sending]
        eta = remaining / rate if rate and remaining and run.status == RunStatus.sending else None
        approval = approvals.get_approval(conn, run.approval_id) if run.approval_id else None
        return RunReport(run, counts, rate, eta, outbox.last_errors(conn, run_id, errors), approval)


# -- run control -----------------------------------------------------------------------------------


def _move(ws: Workspace, run_id: int, to: RunStatus, when: Sequence[RunStatus], reason: str = "") -> Run:
    with opened(ws.settings) as engine:
        run = get_run(engine, run_id)
        with engine.begin() as conn:
            if not outbox.set_run_status(conn, run_id, to, when=when, now=utcnow(), reason=reason):
                raise RunError(f"run {run_id} is {run.status}: it cannot be made {to}")
            if to is RunStatus.cancelled:
                outbox.cancel_deliveries(conn, run_id, utcnow())
            if to is RunStatus.sending:
                outbox.make_due_now(conn, run_id, utcnow())
        return get_run(engine, run_id)


def pause_run(ws: Workspace, run_id: int, reason: str = "paused by the operator") -> Run:
    """Stop sending RUN_ID: workers finish the messages in flight and claim no more."""
    return _move(ws, run_id, RunStatus.paused, [RunStatus.sending], reason)


def resume_run(ws: Workspace, run_id: int) -> Run:
    """Make RUN_ID sendable again, retries due now. A run left `sending` by a killed process resumes too."""
    return _move(ws, run_id, RunStatus.sending, [RunStatus.paused, RunStatus.sending])


def cancel_run(ws: Workspace, run_id: int) -> Run:
    """Stop RUN_ID for good; whatever was not sent is marked cancelled."""
    return _move(ws, run_id, RunStatus.cancelled, [RunStatus.planned, RunStatus.sending, RunStatus.paused])


def retry_run(ws: Workspace, run_id: int) -> int:
    """Queue again the failed deliveries that can succeed on another try (see retry.is_retryable)
    and make the run sendable; returns how many. Hard bounces and other refusals stay failed."""
    with opened(ws.settings) as engine:
        run = get_run(engine, run_id)
        if run.status == RunStatus.cancelled:
            raise RunError(f"run {run_id} was cancelled")
        now = utcnow()
        with engine.begin() as conn:
            ids = [
                i for i, code, reply in outbox.failed_deliveries(conn, run_id) if is_retryable(code, reply)
            ]
            if ids:
                outbox.requeue(conn, ids, now)
                when = [RunStatus.finished, RunStatus.paused, RunStatus.sending, RunStatus.failed]
                outbox.set_run_status(conn, run_id, RunStatus.sending, when=when, now=now)
        return len(ids)
