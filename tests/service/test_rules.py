"""What the daemon enforces on runs: sending windows, the weekly frequency cap, metrics and health."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from pipeline.runs import control, dispatch, start
from pipeline.service.metrics import Metrics, database_problems
from pipeline.storage.engines import make_engine
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.timetable.scheduler import WINDOW_CLOSED, keep_windows
from pipeline.workspace.folders import Workspace
from tests.service.conftest import Process, add_customers, deliveries_of, prepare, write_schedule
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.workspace import SECRET, configure

OFFICE_HOURS = {"window": {"hours": "09:00-17:00", "timezone": "Europe/Warsaw"}}
WARSAW_NOON = datetime(2027, 3, 1, 11, 0, tzinfo=UTC)
WARSAW_EVENING = datetime(2027, 3, 1, 17, 30, tzinfo=UTC)


@pytest.fixture
def ws_engine(
    workspace_dir: Path, database_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Engine:
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    monkeypatch.delenv("COMMS_SMTP_URL", raising=False)
    engine = prepare(workspace_dir, database_url, smtp)
    add_customers(engine, workspace_dir, 5)
    yield engine
    engine.dispose()


def _status(ws: Workspace, run_id: int) -> tuple[str, str]:
    run = control.show_run(ws, run_id).run
    return run.status, run.status_reason


def test_a_run_pauses_when_its_window_closes_and_resumes_when_it_opens(
    workspace_dir: Path, ws_engine: Engine
) -> None:
    ws = Workspace.open(workspace_dir)
    run = start.start_run(ws, "spring-launch", started_by="test", schedule="launch", meta=OFFICE_HOURS)
    operator_paused = start.start_run(
        ws,
        "billing-portal",
        "customers",
        started_by="test",
        schedule="other",
        meta=OFFICE_HOURS,
        paused_reason="by me",
    )

    assert keep_windows(ws_engine, WARSAW_NOON) == []
    assert keep_windows(ws_engine, WARSAW_EVENING) == [(run.id, RunStatus.paused)]
    assert _status(ws, run.id) == (RunStatus.paused, WINDOW_CLOSED)
    assert keep_windows(ws_engine, WARSAW_NOON) == [(run.id, RunStatus.sending)]
    assert _status(ws, run.id) == (RunStatus.sending, "")
    assert _status(ws, operator_paused.id) == (RunStatus.paused, "by me")  # never the window's to resume


def test_a_contact_at_max_per_week_is_skipped_and_the_delivery_says_why(
    workspace_dir: Path, ws_engine: Engine, smtp: SmtpServer
) -> None:
    configure(workspace_dir, {"dispatch": "max_per_week = 1\nbatch_size = 50"})
    ws = Workspace.open(workspace_dir)
    first = start.start_run(ws, "spring-launch", started_by="test")
    dispatch.dispatch_run(ws, first.id)
    second = start.start_run(ws, "billing-portal", "customers", started_by="test")

    report = dispatch.dispatch_run(ws, second.id)

    assert report.counts[DeliveryStatus.skipped] == 5 and smtp.accepted == 5
    skipped = [d for d in deliveries_of(ws_engine) if d.run_id == second.id]
    assert {d.skip_reason for d in skipped} == {"max_per_week: 1 messages in the last 7 days"}


def test_health_fails_when_the_database_is_unreachable() -> None:
    nowhere = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/comms?connect_timeout=2")
    app = Metrics(nowhere).app(lambda: database_problems(nowhere))

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://comms"
        ) as client:
            return await client.get(path)

    health, scrape = asyncio.run(get("/health")), asyncio.run(get("/metrics"))

    assert health.status_code == 503 and health.text.strip() == "database unreachable"
    assert "127.0.0.1" not in health.text and "psycopg" not in health.text
    assert "comms_database_up 0.0" in scrape.text
    nowhere.dispose()


def test_the_daemon_serves_metrics_and_health(
    workspace_dir: Path, smtp: SmtpServer, spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    engine = prepare(workspace_dir, f"sqlite:///{workspace_dir / 'comms.db'}", smtp)
    emails = add_customers(engine, workspace_dir, 8)
    engine.dispose()
    port = free_port()
    configure(workspace_dir, {"daemon": f'metrics_listen = "127.0.0.1:{port}"'})
    write_schedule(workspace_dir, "launch", 'at = "2020-01-01T09:00"')  # long past: missed
    write_schedule(workspace_dir, "now", f'at = "{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"', timezone="UTC")
    daemon: Process = spawn(workspace_dir, "daemon")
    smtp.wait_for(len(emails), timeout_s=30)
    daemon.wait_for(r"event=occurrence.missed ")
    daemon.wait_for(r'msg="run \d+ finished"')

    health = httpx.get(f"http://127.0.0.1:{port}/health")
    scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert daemon.terminate() == 0

    assert (health.status_code, health.text) == (200, "ok\n")
    assert 'comms_deliveries_total{status="sent"} 8.0' in scrape
    assert 'comms_runs{status="finished"} 1.0' in scrape and 'comms_runs{status="missed"} 1.0' in scrape
    assert "comms_database_up 1.0" in scrape
