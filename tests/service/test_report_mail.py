"""A report's schedule: `comms daemon` builds the exec report and mails it to a real SMTP server,
tracking off, the PDF attached, the page as the HTML body."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from pipeline.demo.history import Outcome, add_contacts, insert_run
from pipeline.errors import ScheduleError
from pipeline.reports.periods import parse_period
from pipeline.service.mail_report import fire_report
from pipeline.storage.engines import make_engine
from pipeline.storage.models import MailingStatus, ReportMailing, utcnow
from pipeline.storage.outbox import aware
from pipeline.timetable.scheduler import report_job_specs
from pipeline.timetable.schedules import load_report_schedules, load_schedules
from pipeline.workspace.folders import Workspace
from tests.service.conftest import ZONE, Process, local_time, serving
from tests.support.smtp_server import SmtpServer

SCHEDULE = """report = "exec"
period = "previous-month"
to = ["ceo@kestrelforge.example", "cfo@kestrelforge.example"]
timezone = "{zone}"

[[trigger]]
at = "{at}"
"""


def _seed_last_month(engine: Engine) -> None:
    """One run last month to ten people in sales, three of whom clicked."""
    last_month = parse_period("previous-month", utcnow())
    with engine.begin() as conn:
        people = add_contacts(conn, [(f"p{i}@corp.example", "sales") for i in range(10)])
        outcomes = [Outcome(p, click_after_s=600 if i < 3 else None) for i, p in enumerate(people)]
        insert_run(conn, "alpha", "sales", "staff", last_month.start + timedelta(days=2, hours=9), outcomes)


def _write_schedule(root: Path, at: str) -> datetime:
    """schedules/ceo.toml, a one-off at AT (local time in ZONE); the fire time in UTC."""
    (root / "schedules" / "ceo.toml").write_text(SCHEDULE.format(zone=ZONE, at=at), encoding="utf-8")
    return datetime.fromisoformat(at).replace(tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def _mailings(engine: Engine) -> list[tuple[str, datetime, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(ReportMailing.__table__).order_by(ReportMailing.__table__.c.id))  # type: ignore[attr-defined]
        return [(r.schedule, aware(r.occurrence), r.report, r.status, r.reason) for r in rows]


@pytest.fixture
def any_ws(
    workspace_dir: Path, database_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Engine]]:
    """A workspace on SQLite or PostgreSQL (upgraded, seeded with last month) mailing to SMTP."""
    engine = serving(workspace_dir, database_url, smtp, monkeypatch)
    _seed_last_month(engine)
    yield workspace_dir, engine
    engine.dispose()


def test_the_daemon_mails_the_exec_report_with_its_pdf(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process], tmp_path: Path
) -> None:
    last_month = parse_period("previous-month", utcnow())
    engine = make_engine(Workspace.open(sqlite_ws).settings.database.url)
    _seed_last_month(engine)
    engine.dispose()
    _write_schedule(sqlite_ws, local_time(-5))

    daemon = spawn(sqlite_ws, "daemon")
    daemon.wait_for(r"event=job.added job=ceo#report0 report=exec ")
    daemon.wait_for(r"event=report.sent schedule=ceo report=exec ", timeout_s=120)
    assert daemon.terminate() == 0

    [received] = smtp.messages
    assert received.rcpt_tos == ("ceo@kestrelforge.example", "cfo@kestrelforge.example")
    mail = message_from_bytes(received.data, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == f"Kestrel Forge Ltd.: communications report {last_month.label}"
    assert mail["To"] == "ceo@kestrelforge.example, cfo@kestrelforge.example"
    assert "List-Unsubscribe" not in mail  # a report to the board, not a campaign
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "Human click rate: 30.0%" in text.get_content()
    page = html.get_content()
    assert f"Communications report {last_month.label}</h1>" in page
    assert "/o/" not in page and "/c/" not in page  # tracking off: no pixel, no rewritten link
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"exec-{last_month.label}.pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF")
    (tmp_path / "mailed.pdf").write_bytes(pdf)
    words = subprocess.run(
        ["pdftotext", str(tmp_path / "mailed.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Engaged reach" in words and "Campaigns sent" in words


def test_report_schedules_are_checked_and_kept_apart_from_campaign_schedules(workspace_dir: Path) -> None:
    ws = Workspace.open(workspace_dir)
    path = workspace_dir / "schedules" / "ceo.toml"
    path.write_text(SCHEDULE.format(zone="Europe/London", at="2027-04-01T08:00"), encoding="utf-8")
    [report] = load_report_schedules(ws)
    assert (report.report, report.period, report.to) == (
        "exec",
        "previous-month",
        ("ceo@kestrelforge.example", "cfo@kestrelforge.example"),
    )
    assert report.triggers[0].at is not None and report.triggers[0].at.astimezone(UTC).hour == 7
    assert "ceo" not in [s.name for s in load_schedules(ws)]  # the plan and reviews never see it
    path.write_text(
        path.read_text().replace("cfo@kestrelforge.example", "cfo at kestrelforge"), encoding="utf-8"
    )
    with pytest.raises(
        ScheduleError, match=r"schedules/ceo.toml:3: to: 'cfo at kestrelforge' is not an email"
    ):
        load_report_schedules(ws)
    path.write_text(path.read_text().replace('"previous-month"', '"2027-Q1"'), encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"schedules/ceo.toml:2: period"):
        load_report_schedules(ws)


def test_a_daemon_killed_after_mailing_and_restarted_within_grace_does_not_mail_again(
    any_ws: tuple[Path, Engine], smtp: SmtpServer, spawn: Callable[..., Process]
) -> None:
    root, engine = any_ws
    fire_time = _write_schedule(root, local_time(-5))

    first = spawn(root, "daemon")
    first.wait_for(r"event=report.sent schedule=ceo report=exec ", timeout_s=180)
    first.kill()  # SIGKILL: no shutdown; the one-off's job is gone from the store, schedules/ still has it
    # Restarted within [daemon] grace_s (600 s) of the fire time: the job is scheduled again, fires,
    # and finds its fire claimed.
    again = spawn(root, "daemon")
    again.wait_for(r"event=job.(?:added|kept) job=ceo#report0 report=exec ")
    again.wait_for(r"event=report.already_mailed schedule=ceo report=exec \S+ status=sent", timeout_s=180)
    assert again.terminate() == 0

    assert len(smtp.messages) == 1
    [(schedule, occurrence, report, status, reason)] = _mailings(engine)
    assert (schedule, occurrence, report, status) == ("ceo", fire_time, "exec", MailingStatus.sent)
    assert reason.startswith("250")


def _fire(root: Path, at: str) -> None:
    """What the daemon's job does for ceo.toml's trigger, in this process (a second daemon's fire)."""
    [schedule] = load_report_schedules(Workspace.open(root))
    [(_, _, kwargs)] = report_job_specs(Workspace.open(root), schedule, grace_s=600)
    fire_report(**kwargs)


def test_a_report_the_server_refuses_is_recorded_failed_and_not_sent_again(
    any_ws: tuple[Path, Engine], smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    root, engine = any_ws
    at = local_time(-5)
    fire_time = _write_schedule(root, at)
    smtp.refuse = {
        "ceo@kestrelforge.example": "550 5.1.1 user unknown",
        "cfo@kestrelforge.example": "550 5.1.1 user unknown",
    }
    caplog.set_level(logging.INFO, logger="comms.reports")

    _fire(root, at)
    [failed] = [r for r in caplog.records if r.getMessage() == "report.not_sent"]
    assert failed.levelno == logging.ERROR
    [(_, occurrence, _, status, reason)] = _mailings(engine)
    assert (occurrence, status) == (fire_time, MailingStatus.failed)
    assert "5.1.1 user unknown" in reason

    # The same fire again (another daemon, a restart): claimed already, so nothing is sent.
    smtp.refuse = {}
    _fire(root, at)
    assert [r.getMessage() for r in caplog.records].count("report.already_mailed") == 1
    assert smtp.messages == [] and len(_mailings(engine)) == 1


def test_a_report_that_cannot_be_built_is_recorded_failed_with_the_error(
    any_ws: tuple[Path, Engine], smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    root, engine = any_ws
    at = local_time(-5)
    _write_schedule(root, at)
    (root / "templates/reports/exec.html").write_text("<html>\n<body>\n{% if report %}\n", encoding="utf-8")
    caplog.set_level(logging.INFO, logger="comms.reports")

    _fire(root, at)
    [failed] = [r for r in caplog.records if r.getMessage() == "report.failed"]
    assert failed.levelno == logging.ERROR
    [(_, _, _, status, reason)] = _mailings(engine)
    assert status == MailingStatus.failed
    assert reason.startswith("templates/reports/exec.html:3: Unexpected end of template")
    assert smtp.messages == []
