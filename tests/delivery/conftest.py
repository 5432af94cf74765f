"""Fixtures for dispatch: a workspace wired to a database and an SMTP test server, and contacts in it."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.audience.importer import import_contacts
from pipeline.runs import dispatch, start
from pipeline.runs.control import RunReport
from pipeline.storage.engines import make_engine
from pipeline.storage.models import Run
from pipeline.workspace.folders import Workspace
from tests.conftest import upgraded
from tests.support.workspace import CAMPAIGN, SECRET, configure, open_ws


@pytest.fixture
def ws_root(workspace_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample workspace on the test database (upgraded), with COMMS_SECRET set."""
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    monkeypatch.delenv("COMMS_SMTP_URL", raising=False)
    configure(workspace_dir, {"database": f'url = "{database_url}"'})
    upgraded(database_url)
    return workspace_dir


@pytest.fixture
def engine(ws_root: Path) -> Iterator[Engine]:
    engine = make_engine(Workspace.open(ws_root).settings.database.url)
    yield engine
    engine.dispose()


@pytest.fixture
def add_contacts(ws_root: Path, engine: Engine) -> Callable[..., list[str]]:
    """Import N customers (through the real importer) who are in the `customers` audience."""

    def add(count: int, *, domain: str = "example.com", start: int = 0) -> list[str]:
        path = ws_root / f"contacts-{start}.csv"
        emails = [f"person{i}@{domain}" for i in range(start, start + count)]
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "first_name", "last_name", "marketing_consent", "plan"])
            for i, email in enumerate(emails, start=start):
                writer.writerow([email, f"First{i}", f"Last{i}", "true", "pro" if i % 2 else "free"])
        import_contacts(engine, path, list_name="customers")
        return emails

    return add


def send_campaign(root: Path, sections: dict) -> tuple[Workspace, Run, RunReport]:
    """Configure ROOT with SECTIONS, start a run of the sample campaign and send it here
    until it finishes or pauses."""
    configure(root, sections)
    ws = open_ws(root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")
    return ws, run, dispatch.dispatch_run(ws, run.id)
