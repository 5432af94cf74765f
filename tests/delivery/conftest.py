"""Fixtures for dispatch: a workspace wired to a database and an SMTP test server, and contacts in it."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.audience.importer import import_contacts
from pipeline.runs import control as runs
from pipeline.runs.control import RunReport
from pipeline.storage.engines import make_engine, upgrade
from pipeline.storage.models import Run
from pipeline.workspace.folders import Workspace
from tests.support.smtp_server import SmtpServer

SECRET = "test-secret-key"
CAMPAIGN = "spring-launch"  # audience "customers": the list "customers", marketing_consent = true


def configure(root: Path, sections: dict[str, str]) -> None:
    """Replace whole [section] tables of ROOT/comms.toml (subtables such as [brand.colors] stay)."""
    path = root / "comms.toml"
    kept: list[str] = []
    skipping = False
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[([\w.]+)\]\s*$", line)
        if header:
            skipping = header[1] in sections
        if not skipping:
            kept.append(line)
    for name, body in sections.items():
        kept += ["", f"[{name}]", body.strip()]
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def smtp_sections(port: int, *, connections: int = 4, schedule_s: str = "[0.05]", **dispatch: object) -> dict:
    """Sections for sending to the test server fast: short retries, no throttling to speak of."""
    limits = {"batch_size": 50, "lease_s": 300, "pause_after_connection_failures": 10} | dispatch
    return {
        "transport": f'kind = "smtp"\nurl = "smtp://127.0.0.1:{port}"\nsecurity = "none"\n'
        f"connections = {connections}\ntimeout_s = 5",
        "rate": "per_second = 100000\nper_domain_per_second = 100000",
        "retry": f"schedule_s = {schedule_s}\nmax_age_h = 1",
        "dispatch": "\n".join(f"{key} = {value}" for key, value in limits.items()),
    }


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def ws_root(workspace_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample workspace on the test database (upgraded), with COMMS_SECRET set."""
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    monkeypatch.delenv("COMMS_SMTP_URL", raising=False)
    configure(workspace_dir, {"database": f'url = "{database_url}"'})
    upgrade(database_url)
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
    run = runs.start_run(ws, CAMPAIGN, started_by="test")
    return ws, run, runs.dispatch_run(ws, run.id)


def open_ws(root: Path) -> Workspace:
    """A fresh Workspace (settings are read once per instance, so re-open after configure())."""
    return Workspace.open(root)
