"""The daemon at an occurrence: an unapproved campaign is blocked and recorded, an approval lets the next
occurrence go, and an edit after the approval blocks the one after that."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from pipeline.approvals.ledger import approve
from pipeline.storage.engines import make_engine
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace
from tests.approvals.conftest import APPROVALS, LEAD
from tests.service.conftest import (  # noqa: F401  (fixtures)
    Process,
    add_customers,
    local_time,
    runs_of,
    spawn,
    sqlite_ws,
    wait_until,
    write_schedule,
)
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import configure

CAMPAIGN = "spring-launch"


def test_the_daemon_blocks_an_unapproved_occurrence_and_sends_the_next_once_approved(
    sqlite_ws: Path,  # noqa: F811
    smtp: SmtpServer,
    spawn: Callable[..., Process],  # noqa: F811
) -> None:
    configure(sqlite_ws, {"approvals": APPROVALS})
    engine = make_engine(Workspace.open(sqlite_ws).settings.database.url)
    emails = add_customers(engine, sqlite_ws, 5)
    write_schedule(sqlite_ws, "first", f'at = "{local_time(2)}"')

    daemon = spawn(sqlite_ws, "daemon")
    daemon.wait_for(r"event=run.blocked schedule=first ")
    [blocked] = runs_of(engine)
    assert (blocked.schedule, blocked.status, blocked.recipient_count) == ("first", RunStatus.blocked, 0)
    assert blocked.status_reason == f"{CAMPAIGN} has no approval: run `comms approve {CAMPAIGN}`"
    assert smtp.messages == []

    # The next occurrence is written and approved before the daemon is told about it (SIGHUP).
    write_schedule(sqlite_ws, "second", f'at = "{local_time(1)}"')
    approval = approve(Workspace.open(sqlite_ws), CAMPAIGN, by=LEAD)
    daemon.popen.send_signal(signal.SIGHUP)
    daemon.wait_for(r"event=run.started schedule=second ")
    wait_until(lambda: runs_of(engine)[-1].status == RunStatus.finished, 30, "the approved run to finish")
    sent = runs_of(engine)[-1]
    assert sent.approval_id == approval.id
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(emails)

    # One word changed after the approval: the occurrence after that is blocked again.
    write_schedule(sqlite_ws, "third", f'at = "{local_time(1)}"')
    approve(Workspace.open(sqlite_ws), CAMPAIGN, by=LEAD)
    copy = sqlite_ws / "templates" / "copy" / f"{CAMPAIGN}.md"
    copy.write_text(copy.read_text(encoding="utf-8").replace("Less scrap", "Less waste", 1), encoding="utf-8")
    daemon.popen.send_signal(signal.SIGHUP)
    daemon.wait_for(r"event=run.blocked schedule=third ")
    assert daemon.terminate() == 0

    third = runs_of(engine)[-1]
    assert (third.schedule, third.status) == ("third", RunStatus.blocked)
    assert "has changed since (the copy, layout or brand changed)" in third.status_reason
    assert len(smtp.messages) == len(emails)  # nothing more went out
    engine.dispose()
