"""`comms daemon` runs an A/B test through: arms on schedule, the decision at the decision time, the
rest sent the winner by its own workers, a line in the learning log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update

from pipeline.storage.engines import make_engine
from pipeline.storage.models import Run, utcnow
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.workspace.folders import Workspace
from tests.experiments.conftest import CAMPAIGN, OFFER_SUBJECT, add_customers, messages, small_test
from tests.service.conftest import Process, deliveries_of, local_time, runs_of, wait_until, write_schedule
from tests.support.smtp_server import SmtpServer


def test_the_daemon_decides_at_the_decision_time_and_sends_the_rest(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    small_test(sqlite_ws)
    engine = make_engine(Workspace.open(sqlite_ws).settings.database.url)
    emails = add_customers(sqlite_ws, engine, 40)
    write_schedule(sqlite_ws, "offer", f'at = "{local_time(-5)}"', campaign=CAMPAIGN)

    daemon = spawn(sqlite_ws, "daemon")
    daemon.wait_for(r"event=run.started schedule=offer ")
    wait_until(
        lambda: sum(d.status == DeliveryStatus.sent for d in deliveries_of(engine)) == 20, 60, "the arms"
    )
    [run] = runs_of(engine)
    assert run.status == RunStatus.sending
    assert sorted(d.status for d in deliveries_of(engine)).count(DeliveryStatus.held) == 20
    with engine.begin() as conn:  # the day passes: the decision time comes
        conn.execute(update(Run).where(Run.id == run.id).values(ab_decide_at=utcnow()))

    daemon.wait_for(rf"event=ab.decided run={run.id} winner=offer released=20 ", timeout_s=60)
    wait_until(lambda: runs_of(engine)[0].status == RunStatus.finished, 60, "the rest to be sent")
    assert daemon.terminate() == 0

    received = messages(smtp)
    assert sorted(received) == sorted(emails) and all(len(got) == 1 for got in received.values())
    rest = [d.email for d in deliveries_of(engine) if d.updated_at and d.variant == "offer"]
    assert all(OFFER_SUBJECT in str(received[email or ""][0]["Subject"]) for email in rest)
    log = (sqlite_ws / "reports" / "ab-log.md").read_text(encoding="utf-8")
    assert (
        f"**{CAMPAIGN}** (run {run.id})" in log and "decision: **offer** (rule; sent to the other 20)" in log
    )
    engine.dispose()
