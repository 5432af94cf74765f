"""Fixtures for the daemon: a workspace on a real database and SMTP server, schedules written by the
test, and `comms daemon` / `comms worker` run as real processes whose key=value logs the test reads."""

from __future__ import annotations

import csv
import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from pipeline.audience.importer import import_contacts
from pipeline.storage.engines import make_engine, session
from pipeline.storage.models import Delivery, Run
from tests.conftest import upgraded
from tests.support.cli import start_comms
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import SECRET, configure, smtp_sections

ZONE = "Europe/Warsaw"


def local_time(offset_s: float, zone: str = ZONE) -> str:
    """Now plus OFFSET_S as a schedule file writes it: local wall-clock time in ZONE."""
    moment = datetime.now(ZoneInfo(zone)) + timedelta(seconds=offset_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def write_schedule(
    root: Path, name: str, *triggers: str, campaign: str = "spring-launch", **extra: str
) -> Path:
    """schedules/NAME.toml with TRIGGERS given as `at = "..."` or `cron = "..."` lines."""
    lines = [f'campaign = "{campaign}"', f'timezone = "{extra.pop("timezone", ZONE)}"']
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    for trigger in triggers:
        lines += ["", "[[trigger]]", trigger]
    path = root / "schedules" / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


class Process:
    """`comms ARGS` as a child process; its stderr (the key=value log) goes to a file the test reads."""

    def __init__(self, root: Path, *args: str, label: str) -> None:
        self.log_path = root / f"{label}.log"
        with self.log_path.open("wb") as log:
            self.popen = start_comms(*args, cwd=root, env={"COMMS_SECRET": SECRET}, stderr=log)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = 30) -> re.Match[str]:
        """The first log line matching PATTERN, once it is there; fails if the process ends first."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            found = compiled.search(self.log)
            if found:
                return found
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r}; log:\n{self.log}")
            time.sleep(0.05)

    def terminate(self, timeout_s: float = 60) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout_s)

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Process]]:
    """Start `comms` processes; any still running at the end of the test is killed."""
    started: list[Process] = []

    def start(root: Path, *args: str) -> Process:
        process = Process(root, *args, label=f"{args[0]}-{len(started)}")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.kill()


def prepare(root: Path, database_url: str, smtp: SmtpServer, **dispatch: object) -> Engine:
    """Point the workspace at DATABASE_URL (upgraded) and SMTP, fast limits; no sample schedules."""
    for sample in (root / "schedules").glob("*.toml"):
        sample.unlink()
    sections = smtp_sections(smtp.port, **dispatch)
    sections["rate"] = "per_second = 1000\nper_domain_per_second = 1000"
    sections["database"] = f'url = "{database_url}"'
    sections["daemon"] = "grace_s = 600\nstandby_poll_s = 1"
    configure(root, sections)
    upgraded(database_url)
    return make_engine(database_url)


def serving(
    root: Path, database_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, **dispatch: object
) -> Engine:
    """prepare(), with the environment a daemon of this test runs in: COMMS_SECRET, no COMMS_SMTP_URL."""
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    monkeypatch.delenv("COMMS_SMTP_URL", raising=False)
    return prepare(root, database_url, smtp, **dispatch)


@pytest.fixture
def sqlite_ws(workspace_dir: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    serving(workspace_dir, f"sqlite:///{workspace_dir / 'comms.db'}", smtp, monkeypatch).dispose()
    yield workspace_dir


def add_customers(engine: Engine, root: Path, count: int) -> list[str]:
    """COUNT contacts in the `customers` audience (spring-launch's), through the real importer."""
    path = root / f"customers-{count}.csv"
    emails = [f"person{i}@example.com" for i in range(count)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "marketing_consent"])
        writer.writerows([email, f"First{i}", "true"] for i, email in enumerate(emails))
    import_contacts(engine, path, list_name="customers")
    return emails


def runs_of(engine: Engine) -> list[Run]:
    with session(engine) as db:
        return list(db.exec(select(Run).order_by(Run.id)).scalars())


def deliveries_of(engine: Engine) -> list[Delivery]:
    with session(engine) as db:
        return list(db.exec(select(Delivery)).scalars())
