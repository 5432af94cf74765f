"""Sending a started run (from this process, or from the sending processes it starts), and what is
said after it.

Apart from pipeline.runs.start on purpose: a process that only sends a run (`comms send`, which
starts it in fresh processes of their own, pipeline.runs.apart; `comms runs resume`; with
--processes N the parent of the senders) never imports assembly, the checks, premailer or lxml,
which are a quarter of its memory (tests/delivery/test_runs.py holds to it). The worker and the
daemon still load them: they start runs, or render the mailed report.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.audience.segments import Breakdown, audience_breakdown, load_audience
from pipeline.delivery.engine import Tally, run_worker
from pipeline.delivery.processes import run_senders
from pipeline.delivery.transports import transport_for
from pipeline.errors import DatabaseError, RunError
from pipeline.runs.control import RunReport, describe_transport, get_run, show_run
from pipeline.storage import outbox
from pipeline.storage.engines import opened, session
from pipeline.storage.models import Run, utcnow
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.runs")


@dataclass(frozen=True)
class RunProgress:
    """A run's position while this process sends it (what the progress bar shows)."""

    total: int
    sent: int
    failed: int
    skipped: int
    retrying: int  # deliveries waiting for a retry
    remaining: int


def dispatch_run(
    ws: Workspace,
    run_id: int,
    *,
    on_progress: Callable[[RunProgress], None] | None = None,
    processes: int = 1,
) -> RunReport:
    """Send RUN_ID from this process (or from PROCESSES sending processes it starts) until it
    finishes, pauses or is cancelled.

    SIGTERM or Ctrl-C (when called from the main thread) stops claiming, lets the
    messages in flight finish and pauses the run, to be resumed with resume_run.
    """
    with opened(ws.settings) as engine:
        run = get_run(engine, run_id)
        if run.status != RunStatus.sending:
            raise RunError(f"run {run_id} is {run.status}, not sending: resume it first")
        with engine.connect() as conn:
            before = outbox.run_counts(conn, run_id)

        def progress(tally: Tally) -> None:
            if on_progress is None:
                return
            done = tally.by_run.get(run_id, {})
            sent = before[DeliveryStatus.sent] + done.get("sent", 0)
            failed = before[DeliveryStatus.failed] + done.get("failed", 0)
            skipped = before[DeliveryStatus.skipped] + done.get("skipped", 0)
            total = sum(before.values())
            finished = sent + failed + skipped + before[DeliveryStatus.cancelled]
            on_progress(RunProgress(total, sent, failed, skipped, done.get("retried", 0), total - finished))

        def pause(reason: str) -> None:
            with engine.begin() as conn:
                outbox.set_run_status(
                    conn, run_id, RunStatus.paused, when=[RunStatus.sending], now=utcnow(), reason=reason
                )

        try:
            stopped = asyncio.run(_dispatch(ws, engine, run_id, progress, processes))
        except BaseException as exc:
            # Whatever stopped this process's worker, the run is not left `sending` with nobody on it,
            # unless the database is what failed: then the run stays as it is (its leases expire) and
            # the person is told about the database, not about the pause that could not be written.
            try:
                pause(f"stopped by an error: {exc}"[:1000])
            except (SQLAlchemyError, DatabaseError):
                log.warning("run %s: could not pause it after %s", run_id, exc)
            raise
        if stopped:
            pause("stopped by a signal; resume to continue")
    return show_run(ws, run_id)


async def _dispatch(
    ws: Workspace, engine: Engine, run_id: int, progress: Callable[[Tally], None], processes: int
) -> bool:
    """Run one worker on RUN_ID (in PROCESSES processes); True if a signal stopped it before the run
    was done."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = threading.current_thread() is threading.main_thread()
    if handled:

        def on_signal() -> None:
            log.warning("run %s: stopping on a signal, finishing the messages in flight", run_id)
            stop.set()
            # A second Ctrl-C interrupts at once instead of waiting for the messages in flight.
            loop.remove_signal_handler(signal.SIGINT)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
    try:
        if processes > 1:
            report = await run_senders(
                ws, engine, processes=processes, run_id=run_id, stop=stop, on_progress=progress
            )
        else:
            async with transport_for(ws.settings, ws.root) as transport:
                report = await run_worker(
                    ws, engine, transport, run_id=run_id, stop=stop, on_progress=progress
                )
    finally:
        if handled:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    return report.stopped


# -- after a send --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendSummary:
    """Where a run's messages went and why fewer went than the lists hold."""

    destination: str
    breakdown: Breakdown
    skipped: dict[str, int]  # at send time, by reason


def destination(ws: Workspace) -> str:
    """Where sent messages are now: the outbox folder, the SMTP server, or standard output."""
    config = ws.settings.transport
    if config.kind == "file":
        return f".eml files in {ws.root / config.path}"
    if config.kind == "smtp":
        return f"the SMTP server {describe_transport(ws.settings).removeprefix('smtp ')}"
    return "standard output (console transport)"


def send_summary(ws: Workspace, run: Run) -> SendSummary:
    with opened(ws.settings) as engine:
        with session(engine) as db:
            breakdown = audience_breakdown(db, load_audience(ws, run.audience))
        with engine.connect() as conn:
            skipped = outbox.skip_reasons(conn, run.id or 0)
    return SendSummary(destination(ws), breakdown, skipped)
