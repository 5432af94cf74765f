"""Several processes on one PostgreSQL database: the daemon with `comms worker`s, a worker killed
mid-run, and a standby daemon taking over from a leader that died."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.runs import start
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.workspace.folders import Workspace
from tests.service.conftest import (
    Process,
    add_customers,
    deliveries_of,
    local_time,
    runs_of,
    serving,
    wait_until,
    write_schedule,
)
from tests.support.smtp_server import SmtpServer, message_ids_by_recipient


@pytest.fixture
def pg_ws(
    workspace_dir: Path, postgres_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Engine]]:
    # Short leases, so that a killed worker's deliveries come back within seconds.
    engine = serving(workspace_dir, postgres_url, smtp, monkeypatch, lease_s=3, batch_size=100)
    yield workspace_dir, engine
    engine.dispose()


def test_the_daemon_and_two_workers_drain_one_run_with_no_duplicate_and_no_loss(
    pg_ws: tuple[Path, Engine], smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    root, engine = pg_ws
    emails = add_customers(engine, root, 5000)
    smtp.record = True
    workers = [spawn(root, "worker"), spawn(root, "worker")]
    for worker in workers:
        worker.wait_for(r"event=worker.started ")
    write_schedule(root, "launch", f'at = "{local_time(-5)}"')
    daemon = spawn(root, "daemon")

    wait_until(lambda: runs_of(engine) and runs_of(engine)[0].status == RunStatus.finished, 120, "the run")
    assert [process.terminate() for process in [daemon, *workers]] == [0, 0, 0]

    received = message_ids_by_recipient(smtp)
    assert len(received) == len(emails) and set(received) == set(emails)
    assert smtp.accepted == len(emails)  # no one twice
    assert {d.status for d in deliveries_of(engine)} == {DeliveryStatus.sent}
    # Every process took part in the sending.
    for process in [daemon, *workers]:
        assert "event=worker.stopped" in process.log
        assert "sent=0 " not in process.log


def test_a_worker_killed_mid_run_loses_none_of_its_claimed_deliveries(
    pg_ws: tuple[Path, Engine], smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    root, engine = pg_ws
    emails = add_customers(engine, root, 600)
    smtp.hold_after = 100  # both workers stand still mid-run, holding claims, until the kill
    run = start.start_run(Workspace.open(root), "spring-launch", started_by="test")
    # One process each, holding its claims itself (several: tests/delivery/test_crash.py).
    doomed, survivor = spawn(root, "worker", "--processes=1"), spawn(root, "worker", "--processes=1")

    smtp.wait_for(100, timeout_s=60)
    doomed.kill()
    smtp.release()
    held = [d for d in deliveries_of(engine) if d.status == DeliveryStatus.sending]
    assert any(f":{doomed.popen.pid}:" in (d.leased_by or "") for d in held)  # its claims, still leased

    wait_until(lambda: runs_of(engine)[0].status == RunStatus.finished, 120, "the run to finish")
    assert survivor.terminate() == 0
    # Its claims go back to the outbox: at once when the survivor sees it dead (it was on this
    # machine), or when its lease runs out (all a worker on another machine can go by).
    assert "left in flight by" in survivor.log or "whose worker's lease ran out" in survivor.log

    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)  # no loss
    # A message the dead worker handed over but never recorded may go again: with the same Message-ID.
    assert all(len(set(ids)) == 1 for ids in received.values())
    assert {d.status for d in deliveries_of(engine)} == {DeliveryStatus.sent}
    assert run.id == runs_of(engine)[0].id


def test_a_standby_daemon_takes_over_when_the_leader_dies(
    pg_ws: tuple[Path, Engine], smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    root, engine = pg_ws
    emails = add_customers(engine, root, 10)
    leader = spawn(root, "daemon")
    leader.wait_for(r"event=daemon.leading ")
    standby = spawn(root, "daemon")
    standby.wait_for(r"event=daemon.standby ")
    assert "event=daemon.leading" not in standby.log
    # Written after both started, so no start-up time matters: the leader reads schedules/ only at
    # its start (and on SIGHUP), the standby when it takes over, and then the one-off is due.
    write_schedule(root, "launch", f'at = "{local_time(-5)}"')

    leader.kill()  # SIGKILL: no goodbye; the server drops its lock with its connection

    standby.wait_for(r"event=daemon.takeover", timeout_s=60)
    standby.wait_for(r"event=run.started schedule=launch ", timeout_s=30)
    wait_until(lambda: smtp.accepted == len(emails), 30, "every message")
    assert standby.terminate() == 0
    assert len(runs_of(engine)) == 1
