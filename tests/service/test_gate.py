"""The daemon passes every scheduled run through the checks: an error finding fails the occurrence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.storage.engines import make_engine
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace
from tests.service.conftest import Process, add_customers, local_time, runs_of, write_schedule
from tests.support.smtp_server import SmtpServer


def test_a_scheduled_campaign_with_an_error_finding_fails_to_start_and_sends_nothing(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    engine = make_engine(Workspace.open(sqlite_ws).settings.database.url)
    add_customers(engine, sqlite_ws, 5)
    copy = sqlite_ws / "templates/copy/spring-launch.md"
    copy.write_text(copy.read_text().replace("Best regards,", "Lorem ipsum dolor sit amet.\n\nBest regards,"))
    write_schedule(sqlite_ws, "launch", f'at = "{local_time(2)}"')

    daemon = spawn(sqlite_ws, "daemon")
    failed = daemon.wait_for(r"event=run.failed_to_start schedule=launch .*")
    assert daemon.terminate() == 0

    assert "templates/copy/spring-launch.md:" in failed[0] and "content.lorem-ipsum" in failed[0]
    [run] = runs_of(engine)
    assert run.status == RunStatus.failed and run.recipient_count in (0, None)
    assert smtp.messages == []
    engine.dispose()
