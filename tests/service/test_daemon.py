"""`comms daemon` as a real process on SQLite, sending to a real SMTP server on schedule."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from pipeline.storage.engines import make_engine
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.workspace.folders import Workspace
from tests.service.conftest import (
    ZONE,
    Process,
    add_customers,
    deliveries_of,
    local_time,
    runs_of,
    wait_until,
    write_schedule,
)
from tests.support.smtp_server import SmtpServer, message_ids_by_recipient
from tests.support.workspace import configure


def _engine(root: Path) -> Engine:
    return make_engine(Workspace.open(root).settings.database.url)


def test_a_one_off_sends_once_and_a_restart_does_not_send_it_again(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    engine = _engine(sqlite_ws)
    emails = add_customers(engine, sqlite_ws, 20)
    # Due a few seconds ago, well within grace: it runs at start however long the start takes.
    write_schedule(sqlite_ws, "launch", f'at = "{local_time(-5)}"')

    daemon = spawn(sqlite_ws, "daemon")
    daemon.wait_for(r"event=job.added job=launch#0 ")
    daemon.wait_for(r"event=run.started schedule=launch ")
    wait_until(lambda: runs_of(engine)[0].status == RunStatus.finished, 30, "the run to finish")
    assert daemon.terminate() == 0

    # Restarted with a second one-off also due: once that one has run, the first would have too.
    write_schedule(sqlite_ws, "sentinel", f'at = "{local_time(-1)}"', audience="customers-eu")
    again = spawn(sqlite_ws, "daemon")
    again.wait_for(r"event=run.(?:started|failed_to_start) schedule=sentinel ")  # its audience is empty
    assert again.terminate() == 0

    assert "job=launch#0" not in again.log  # not even scheduled: its occurrence has a run
    received = message_ids_by_recipient(smtp)
    assert sorted(received) == sorted(emails)
    assert all(len(ids) == 1 for ids in received.values())
    assert [(r.schedule, r.status) for r in runs_of(engine)][0] == ("launch", RunStatus.finished)
    engine.dispose()


def test_sighup_applies_added_changed_and_removed_schedule_files(
    sqlite_ws: Path, spawn: Callable[..., Process]
) -> None:
    digest = write_schedule(sqlite_ws, "digest", 'cron = "0 9 * * MON"')
    write_schedule(sqlite_ws, "launch", 'at = "2030-01-07T09:00"')
    daemon = spawn(sqlite_ws, "daemon")
    daemon.wait_for(r"event=job.added job=launch#0 .* next_fire=2030-01-07T09:00:00\+01:00")
    daemon.wait_for(r"event=job.added job=digest#0 ")

    write_schedule(sqlite_ws, "launch", 'at = "2030-02-04T10:30"')
    write_schedule(sqlite_ws, "newsletter", 'cron = "0 8 1 * *"', campaign="q3-results")
    digest.unlink()
    daemon.popen.send_signal(signal.SIGHUP)

    daemon.wait_for(r"event=job.changed job=launch#0 .* next_fire=2030-02-04T10:30:00\+01:00")
    daemon.wait_for(r"event=job.added job=newsletter#0 campaign=q3-results ")
    daemon.wait_for(r"event=job.removed job=digest#0")

    # A broken edit is refused as a whole and the jobs stay as they were.
    write_schedule(sqlite_ws, "launch", 'cron = "61 9 * * MON"')
    daemon.popen.send_signal(signal.SIGHUP)
    rejected = daemon.wait_for(r"event=schedules.rejected .*")
    assert "schedules/launch.toml:5: trigger #1 cron" in rejected[0]
    assert daemon.terminate() == 0
    assert daemon.log.count("event=job.changed") == 1


def test_a_daemon_down_across_a_one_off_sends_it_within_grace_and_records_it_missed_outside(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    engine = _engine(sqlite_ws)
    emails = add_customers(engine, sqlite_ws, 10)
    # Two hours ago, with 600 s of grace: the daemon was not there, and it is too late now.
    write_schedule(sqlite_ws, "long-ago", f'at = "{local_time(-7200)}"')

    first = spawn(sqlite_ws, "daemon")
    first.wait_for(r"event=daemon.leading ")
    # Only now, however long the start took, a one-off a few seconds ahead, read on SIGHUP.
    soon = local_time(5)
    write_schedule(sqlite_ws, "soon", f'at = "{soon}"')
    first.popen.send_signal(signal.SIGHUP)
    first.wait_for(r"event=job.added job=soon#0 ")
    assert first.terminate() == 0
    assert smtp.accepted == 0
    due = datetime.fromisoformat(soon).replace(tzinfo=ZoneInfo(ZONE))
    while datetime.now(ZoneInfo(ZONE)) <= due:
        time.sleep(0.1)  # the daemon is down when the occurrence comes

    second = spawn(sqlite_ws, "daemon")
    second.wait_for(r"event=run.started schedule=soon ")
    wait_until(lambda: smtp.accepted == len(emails), 30, "every message")
    assert second.terminate() == 0

    by_schedule = {run.schedule: run for run in runs_of(engine)}
    assert by_schedule["soon"].status in (RunStatus.sending, RunStatus.finished)
    assert by_schedule["soon"].occurrence == due.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    missed = by_schedule["long-ago"]
    assert (missed.status, missed.campaign, missed.department) == (RunStatus.missed, "spring-launch", "sales")
    assert "not running within 600 s" in missed.status_reason
    assert len(runs_of(engine)) == 2  # the second start recorded the miss once, and nothing else
    engine.dispose()


def test_sigterm_mid_run_leaves_a_run_the_next_start_completes_without_duplicates(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    engine = _engine(sqlite_ws)
    emails = add_customers(engine, sqlite_ws, 300)
    smtp.hold_after = 40  # the run stands still mid-way until the signal has arrived
    write_schedule(sqlite_ws, "launch", f'at = "{local_time(-5)}"')

    daemon = spawn(sqlite_ws, "daemon")
    smtp.wait_for(40, timeout_s=60)
    daemon.popen.send_signal(signal.SIGTERM)
    daemon.wait_for(r"event=signal name=SIGTERM")
    smtp.release()  # the messages in flight finish
    assert daemon.popen.wait(timeout=60) == 0
    daemon.wait_for(r"event=worker.stopped ")

    (run,) = runs_of(engine)
    assert run.status == RunStatus.sending  # left to be continued, not paused or failed
    statuses = {d.status for d in deliveries_of(engine)}
    assert DeliveryStatus.sending not in statuses  # in-flight finished, nothing left leased
    assert smtp.accepted < len(emails)

    again = spawn(sqlite_ws, "daemon")
    wait_until(lambda: runs_of(engine)[0].status == RunStatus.finished, 60, "the run to finish")
    assert again.terminate() == 0

    received = message_ids_by_recipient(smtp)
    assert sorted(received) == sorted(emails)
    assert smtp.accepted == len(emails)  # a clean stop leaves nothing to send twice
    engine.dispose()


def test_the_daemon_logs_the_warnings_preview_shows(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    engine = _engine(sqlite_ws)
    add_customers(engine, sqlite_ws, 2)
    copy = sqlite_ws / "templates" / "copy" / "spring-launch.md"
    copy.write_text(copy.read_text() + "".join(f"Paragraph {i} of a long letter.\n\n" for i in range(4000)))
    # The check that stops a clipped message is turned down to a warning, so the run goes ahead.
    configure(sqlite_ws, {"checks": 'severity = { "deliverability.html-clipped" = "warning" }'})
    write_schedule(sqlite_ws, "long", f'at = "{local_time(3)}"')

    daemon = spawn(sqlite_ws, "daemon")
    started = daemon.wait_for(r"event=run.started schedule=long .*?run=(\d+) ")
    warning = daemon.wait_for(r"level=warning logger=comms.scheduler event=run.warning run=(\d+) .*")
    assert daemon.terminate() == 0

    assert warning[1] == started[1]
    assert "Gmail clips messages over 102 KB" in warning[0]
    engine.dispose()
