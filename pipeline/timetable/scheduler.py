"""The timetable in motion: APScheduler jobs kept in step with schedules/, one run per occurrence.

Each [[trigger]] of an enabled schedule is one job in a SQLAlchemy job store (its
own table in the workspace database), so the timetable survives restarts. The job
calls `fire` — an importable function with plain arguments, as APScheduler pickles
both — which starts the run and leaves the sending to the workers.

An occurrence the daemon was down for runs when the daemon comes back within
[daemon] grace_s of it, and is recorded as a `missed` run otherwise (coalesced: a
recurring job that missed several occurrences catches up with its latest only).
Whatever triggers it, an occurrence has at most one run: (schedule, occurrence) is
unique in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pipeline.assembly.copy import load_copy
from pipeline.errors import CommsError, RunBlocked
from pipeline.logs import log_event
from pipeline.runs.start import OccurrenceTaken, start_run
from pipeline.storage import outbox
from pipeline.storage.engines import connect
from pipeline.storage.models import Run, utcnow
from pipeline.storage.statuses import RunStatus
from pipeline.timetable.schedules import (
    ReportSchedule,
    Schedule,
    Trigger,
    Window,
    latest_occurrence,
    load_report_schedules,
    load_schedules,
)
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.scheduler")

JOBSTORE_TABLE = "comms_scheduler_jobs"
# The status reason of a run paused because its sending window closed (and only of those:
# the daemon resumes them when the window opens, never a run an operator paused).
WINDOW_CLOSED = "outside its sending window"
# How late past its fire time a job may start and still find its occurrence (executor delay).
_START_SLACK = timedelta(seconds=60)


# -- the job ---------------------------------------------------------------------------------------


def fire(
    *,
    root: str,
    schedule: str,
    campaign: str,
    audience: str | None,
    timezone: str,
    at: str | None,
    cron: str | None,
    window: str | None,
    grace_s: float,
) -> None:
    """Start the run for SCHEDULE's occurrence that is due now (APScheduler's job function).

    The arguments are a snapshot of the schedule file as of the last sync, so an edit takes
    effect on SIGHUP, not half-way. A campaign that fails to start is recorded as a failed run.
    """
    zone = ZoneInfo(timezone)
    now = utcnow()
    occurrence = due_occurrence(schedule, timezone=timezone, at=at, cron=cron, grace_s=grace_s, now=now)
    if occurrence is None:
        return
    ws = Workspace.open(root)
    meta = {"window": {"hours": window, "timezone": timezone}} if window else None
    closed = window is not None and not Window.parse(window).is_open(now, zone)
    try:
        run = start_run(
            ws,
            campaign,
            audience,
            started_by=f"schedule:{schedule}",
            schedule=schedule,
            occurrence=occurrence,
            meta=meta,
            paused_reason=WINDOW_CLOSED if closed else None,
            # A recurring schedule sends each occurrence to everyone; a one-off leaves out
            # contacts who already received the campaign, as `comms send` does.
            again=cron is not None,
        )
    except RunBlocked as exc:  # recorded as a blocked run by the gate
        log_event(
            log, "run.blocked", level=logging.WARNING, schedule=schedule, occurrence=occurrence, error=exc
        )
        return
    except OccurrenceTaken:
        log_event(log, "occurrence.already_run", schedule=schedule, occurrence=occurrence)
        return
    except CommsError as exc:
        record_unstarted(ws, schedule, campaign, audience, occurrence, RunStatus.failed, str(exc))
        log_event(
            log,
            "run.failed_to_start",
            level=logging.ERROR,
            schedule=schedule,
            occurrence=occurrence,
            error=exc,
        )
        return
    log_event(
        log,
        "run.started",
        schedule=schedule,
        occurrence=occurrence,
        run=run.id,
        campaign=run.campaign,
        audience=run.audience,
        recipients=run.recipient_count,
        status=run.status,
    )
    for warning in run.meta.get("warnings", []):  # what preview and `comms send` show
        log_event(log, "run.warning", level=logging.WARNING, run=run.id, schedule=schedule, warning=warning)


def due_occurrence(
    schedule: str, *, timezone: str, at: str | None, cron: str | None, grace_s: float, now: datetime
) -> datetime | None:
    """The fire time (UTC) a job of SCHEDULE's trigger runs for at NOW; None, logged, if there is none.

    A job is told only its trigger (APScheduler 3 does not pass the fire time), and only ever
    runs within the misfire grace of that time, plus the executor's delay.
    """
    trigger = Trigger(at=datetime.fromisoformat(at) if at else None, cron=cron)
    occurrence = latest_occurrence(
        trigger, ZoneInfo(timezone), now, timedelta(seconds=grace_s) + _START_SLACK
    )
    if occurrence is None:
        log_event(log, "occurrence.unknown", level=logging.ERROR, schedule=schedule, trigger=str(trigger))
        return None
    return occurrence.astimezone(UTC)  # SQLite keeps no zone: every stored time is UTC


def record_unstarted(
    ws: Workspace,
    schedule: str,
    campaign: str,
    audience: str | None,
    occurrence: datetime,
    status: RunStatus,
    reason: str,
) -> None:
    """Record an occurrence that sends nothing (missed, or failed to start) as a run of its own,
    so `comms runs list` shows it and it is never tried again."""
    department = ""
    try:
        copy = load_copy(ws, campaign)
        department, audience = copy.front.department, audience or copy.front.audience
    except CommsError:
        pass  # the copy is what failed: the run is recorded without what it would have said
    now = utcnow()
    run = Run(
        campaign=campaign,
        department=department,
        audience=audience or "",
        status=status,
        started_by=f"schedule:{schedule}",
        schedule=schedule,
        occurrence=occurrence,
        status_reason=reason[:1000],
        created_at=now,
        finished_at=now,
    )
    engine = connect(ws.settings)
    try:
        with engine.begin() as conn:
            outbox.create_run(conn, run)
    except IntegrityError:
        pass  # already recorded: an occurrence is recorded once
    finally:
        engine.dispose()


# -- the timetable ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """What one trigger of one schedule becomes in the job store."""

    id: str
    schedule: Schedule
    trigger: Trigger
    kwargs: dict[str, Any]


def job_specs(ws: Workspace, schedule: Schedule, grace_s: float) -> list[JobSpec]:
    return [
        JobSpec(
            id=f"{schedule.name}#{index}",
            schedule=schedule,
            trigger=trigger,
            kwargs={
                "root": str(ws.root),
                "schedule": schedule.name,
                "campaign": schedule.campaign,
                "audience": schedule.audience,
                "timezone": schedule.timezone.key,
                "at": trigger.at.isoformat() if trigger.at else None,
                "cron": trigger.cron,
                "window": str(schedule.window) if schedule.window else None,
                "grace_s": grace_s,
            },
        )
        for index, trigger in enumerate(schedule.triggers)
    ]


def report_job_specs(
    ws: Workspace, schedule: ReportSchedule, grace_s: float
) -> list[tuple[str, Trigger, dict[str, Any]]]:
    """(job id, trigger, job arguments) per trigger of a report's schedule: with the trigger itself,
    so the job can tell which fire it is for (due_occurrence), and claim it once."""
    return [
        (
            f"{schedule.name}#report{index}",
            trigger,
            {
                "root": str(ws.root),
                "schedule": schedule.name,
                "report": schedule.report,
                "period": schedule.period,
                "compare": schedule.compare,
                "to": list(schedule.to),
                "timezone": schedule.timezone.key,
                "at": trigger.at.isoformat() if trigger.at else None,
                "cron": trigger.cron,
                "grace_s": grace_s,
            },
        )
        for index, trigger in enumerate(schedule.triggers)
    ]


class Timetable:
    """An AsyncIOScheduler over the workspace database whose jobs follow schedules/.

    REPORT_JOB builds and mails a report when a report's schedule fires; the daemon passes it
    (pipeline.service.mail_report.fire_report: reports sit beside the timetable, not under it),
    and without one report schedules are read, checked, and not scheduled.
    """

    def __init__(self, ws: Workspace, engine: Engine, report_job: Callable[..., None] | None = None) -> None:
        self.ws = ws
        self.engine = engine
        self.report_job = report_job
        self.grace_s = ws.settings.daemon.grace_s
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": self.grace_s},
            timezone=UTC,
        )
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.specs: dict[str, JobSpec] = {}
        self._recording: set[asyncio.Future[None]] = set()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.state == STATE_RUNNING)

    def start(self) -> None:
        """Start with the job store as schedules/ says, before anything due is looked at."""
        self.scheduler.start(paused=True)
        self.sync()
        self.scheduler.resume()

    def sync(self) -> None:
        """Make the jobs match schedules/: add new triggers, replace edited ones, drop the rest.

        A bad file raises ScheduleError and changes nothing. An unchanged job is kept as it
        is, with its next fire time, so an occurrence the daemon was down for is still due;
        a one-off whose occurrence already has a run is not scheduled again.
        """
        wanted: dict[str, JobSpec] = {}
        reports = load_report_schedules(self.ws)  # read first: a bad file changes nothing
        for schedule in load_schedules(self.ws):
            if not schedule.enabled:
                continue
            with self.engine.connect() as conn:
                done = outbox.scheduled_occurrences(conn, schedule.name)
            for spec in job_specs(self.ws, schedule, self.grace_s):
                if spec.trigger.at is None or spec.trigger.at not in done:
                    wanted[spec.id] = spec
        report_jobs = {
            job_id: (schedule, trigger, kwargs)
            for schedule in reports
            if schedule.enabled and self.report_job is not None
            for job_id, trigger, kwargs in report_job_specs(self.ws, schedule, self.grace_s)
        }
        existing = {job.id: job for job in self.scheduler.get_jobs()}
        for job_id in sorted(existing.keys() - wanted.keys() - report_jobs.keys()):
            self.scheduler.remove_job(job_id)
            log_event(log, "job.removed", job=job_id)
        for job_id, spec in wanted.items():
            job = existing.get(job_id)
            change = "kept"
            if job is None or job.kwargs != spec.kwargs:
                change = "added" if job is None else "changed"
                job = self.scheduler.add_job(
                    fire,
                    trigger=spec.trigger.build(spec.schedule.timezone),
                    id=job_id,
                    name=f"{spec.schedule.name}: {spec.trigger}",
                    kwargs=spec.kwargs,
                    replace_existing=True,
                )
            log_event(
                log,
                f"job.{change}",
                job=job_id,
                campaign=spec.schedule.campaign,
                trigger=str(spec.trigger),
                next_fire=job.next_run_time.astimezone(spec.schedule.timezone) if job.next_run_time else None,
            )
        for job_id, (report, trigger, kwargs) in report_jobs.items():
            job = existing.get(job_id)
            change = "kept"
            if job is None or job.kwargs != kwargs:
                change = "added" if job is None else "changed"
                job = self.scheduler.add_job(
                    self.report_job,
                    trigger=trigger.build(report.timezone),
                    id=job_id,
                    name=f"{report.name}: {trigger}",
                    kwargs=kwargs,
                    replace_existing=True,
                )
            log_event(
                log,
                f"job.{change}",
                job=job_id,
                report=report.report,
                to=",".join(report.to),
                trigger=str(trigger),
                next_fire=job.next_run_time.astimezone(report.timezone) if job.next_run_time else None,
            )
        self.specs = wanted

    async def shutdown(self) -> None:
        """Fire nothing more; a run being started finishes starting (it is one transaction)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._recording:
            await asyncio.wait(self._recording)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        spec = self.specs.get(event.job_id)
        if spec is None:
            if "#report" in event.job_id:  # a report is not a run: nothing to record, only to say
                log_event(log, "report.missed", level=logging.WARNING, job=event.job_id, grace_s=self.grace_s)
            return
        occurrence = event.scheduled_run_time.astimezone(UTC)
        log_event(
            log,
            "occurrence.missed",
            level=logging.WARNING,
            job=event.job_id,
            occurrence=occurrence,
            grace_s=self.grace_s,
        )
        reason = f"the daemon was not running within {self.grace_s:g} s of {occurrence.isoformat()}"
        args = (self.ws, spec.schedule.name, spec.schedule.campaign, spec.schedule.audience, occurrence)
        # Listeners run on the event loop; the database write goes to a thread.
        future = asyncio.get_running_loop().run_in_executor(
            None, record_unstarted, *args, RunStatus.missed, reason
        )
        self._recording.add(future)
        future.add_done_callback(self._recording.discard)


# -- sending windows -------------------------------------------------------------------------------


def keep_windows(engine: Engine, now: datetime) -> list[tuple[int, RunStatus]]:
    """Pause scheduled runs whose sending window has closed; resume the ones this paused once it opens.

    Returns the runs moved and where to. Workers notice a pause within a second and finish
    only the messages already in flight.
    """
    moved: list[tuple[int, RunStatus]] = []
    with engine.begin() as conn:
        for run in outbox.scheduled_runs_in_progress(conn):
            window = run.meta.get("window")
            if not window:
                continue
            is_open = Window.parse(window["hours"]).is_open(now, ZoneInfo(window["timezone"]))
            if run.status == RunStatus.sending and not is_open:
                to, when, reason = RunStatus.paused, RunStatus.sending, WINDOW_CLOSED
            elif run.status == RunStatus.paused and run.reason == WINDOW_CLOSED and is_open:
                to, when, reason = RunStatus.sending, RunStatus.paused, ""
            else:
                continue
            if outbox.set_run_status(conn, run.run_id, to, when=[when], now=now, reason=reason):
                moved.append((run.run_id, to))
    return moved


__all__ = [
    "JOBSTORE_TABLE",
    "WINDOW_CLOSED",
    "JobSpec",
    "Timetable",
    "due_occurrence",
    "fire",
    "job_specs",
    "keep_windows",
    "report_job_specs",
]
