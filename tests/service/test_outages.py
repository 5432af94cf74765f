"""The database going silent or away under `comms send`, `comms worker` and the daemon, through a TCP
proxy in front of the real PostgreSQL server (tests/db_proxy.py): they stop sending what they can
no longer be sure of, ride the outage out, and carry on by themselves with every recipient served
exactly once; an outage longer than [database] outage_s ends them with one line."""

from __future__ import annotations

import time
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
    prepare,
    runs_of,
    wait_until,
    write_schedule,
)
from tests.support.db_proxy import DbProxy
from tests.support.smtp_server import SmtpServer, message_ids_by_recipient
from tests.support.workspace import SECRET, configure

CONNECTIONS = 2
PROCESSES = 2  # sending processes, one connection each
LEASE_S = 3


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[DbProxy]:
    with DbProxy(postgres_url) as proxy:
        yield proxy


def _through(
    root: Path, postgres_url: str, proxy: DbProxy, smtp: SmtpServer, *, per_second: int, outage_s: float = 120
) -> Engine:
    """ROOT on PostgreSQL through PROXY with short database timeouts; the engine returned goes around
    the proxy, for the test's own reads."""
    engine = prepare(root, postgres_url, smtp, connections=CONNECTIONS, batch_size=100, lease_s=LEASE_S)
    configure(
        root,
        {
            "database": f'url = "{proxy.url}"\nconnect_timeout_s = 1\nstatement_timeout_s = 1\n'
            f"outage_s = {outage_s}",
            "rate": f"per_second = {per_second}\nper_domain_per_second = {per_second}",
        },
    )
    return engine


def _sending(
    command: str, root: Path, spawn: Callable[..., Process], monkeypatch: pytest.MonkeyPatch, *options: str
) -> Process:
    """`comms send`; a run started and `comms worker` to send it; or the daemon with a schedule due now.
    OPTIONS go to send and worker."""
    if command == "send":
        return spawn(root, "send", "spring-launch", "--yes", *options)
    if command == "worker":
        monkeypatch.setenv("COMMS_SECRET", SECRET)
        start.start_run(Workspace.open(root), "spring-launch", started_by="test")
        return spawn(root, "worker", *options)
    write_schedule(root, "launch", f'at = "{local_time(-5)}"')
    return spawn(root, "daemon")


def _finishes(command: str, process: Process, engine: Engine) -> None:
    """The run finishes; `comms send` then exits 0, a worker or the daemon runs on and stops cleanly."""
    wait_until(lambda: runs_of(engine)[0].status == RunStatus.finished, 90, "the run to finish")
    if command == "send":
        assert process.popen.wait(timeout=60) == 0
    else:
        assert process.popen.poll() is None  # still running: the outage stopped nothing
        assert process.terminate() == 0


def _each_once(engine: Engine, smtp: SmtpServer, emails: list[str]) -> None:
    assert {d.status for d in deliveries_of(engine)} == {DeliveryStatus.sent}
    received = message_ids_by_recipient(smtp)
    assert sorted(received) == sorted(emails)
    assert all(len(ids) == 1 for ids in received.values())


def _stops_sending_while_silent(process: Process, proxy: DbProxy, smtp: SmtpServer) -> None:
    smtp.wait_for(10, timeout_s=60)
    proxy.silence()
    stopping = "leases could not be renewed"
    # Each of the PROCESSES senders stops on its own leases.
    wait_until(lambda: process.log.count(stopping) >= PROCESSES, 60, "every sender to stop")
    stopped_at = smtp.accepted
    time.sleep(LEASE_S)  # as long again as a lease: the queue held far more than that
    assert smtp.accepted <= stopped_at + CONNECTIONS  # only what was already in flight
    proxy.restore()


@pytest.mark.parametrize("command", ["send", "worker"])
def test_a_silent_database_stops_sending_on_lost_leases_and_they_recover_by_themselves(
    workspace_dir: Path,
    postgres_url: str,
    proxy: DbProxy,
    smtp: SmtpServer,
    spawn: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    engine = _through(workspace_dir, postgres_url, proxy, smtp, per_second=25)
    emails = add_customers(engine, workspace_dir, 150)
    process = _sending(command, workspace_dir, spawn, monkeypatch, f"--processes={PROCESSES}")

    _stops_sending_while_silent(process, proxy, smtp)
    assert smtp.accepted < len(emails)

    process.wait_for(r"leases renewed: sending again", timeout_s=60)
    _finishes(command, process, engine)
    _each_once(engine, smtp, emails)
    engine.dispose()


@pytest.mark.parametrize("command", ["send", "worker", "daemon"])
def test_a_database_blip_mid_send_is_ridden_out_and_every_delivery_ends_once(
    workspace_dir: Path,
    postgres_url: str,
    proxy: DbProxy,
    smtp: SmtpServer,
    spawn: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    engine = _through(workspace_dir, postgres_url, proxy, smtp, per_second=40)
    emails = add_customers(engine, workspace_dir, 200)
    process = _sending(command, workspace_dir, spawn, monkeypatch)

    smtp.wait_for(20, timeout_s=60)
    proxy.cut()
    time.sleep(4)  # the outage
    proxy.restore()

    _finishes(command, process, engine)
    assert "unreachable, retrying" in process.log
    assert "Traceback" not in process.log
    assert "leader_lost" not in process.log
    _each_once(engine, smtp, emails)
    engine.dispose()


def test_an_outage_longer_than_outage_s_ends_comms_send_with_one_line(
    workspace_dir: Path, postgres_url: str, proxy: DbProxy, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    engine = _through(workspace_dir, postgres_url, proxy, smtp, per_second=20, outage_s=2)
    add_customers(engine, workspace_dir, 200)
    process = spawn(workspace_dir, "send", "spring-launch", "--yes")
    smtp.wait_for(5, timeout_s=60)
    proxy.cut()

    assert process.popen.wait(timeout=60) == 1
    last = process.log.strip().splitlines()[-1]
    assert last.startswith(
        f"comms: error: the database postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/"
    )
    assert "was unreachable for 2 s ([database] outage_s)" in last
    assert "Traceback" not in process.log
    engine.dispose()
