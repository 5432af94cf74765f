"""A report's schedule: `comms daemon` builds the exec report and mails it to a real SMTP server,
tracking off, the PDF attached, the page as the HTML body."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.demo.history import Outcome, add_contacts, insert_run
from pipeline.errors import ScheduleError
from pipeline.reports.periods import parse_period
from pipeline.storage.engines import make_engine
from pipeline.storage.models import utcnow
from pipeline.timetable.schedules import load_report_schedules, load_schedules
from pipeline.workspace.folders import Workspace
from tests.service.conftest import ZONE, Process, local_time
from tests.support.smtp_server import SmtpServer

SCHEDULE = """report = "exec"
period = "previous-month"
to = ["ceo@kestrelforge.example", "cfo@kestrelforge.example"]
timezone = "{zone}"

[[trigger]]
at = "{at}"
"""


def test_the_daemon_mails_the_exec_report_with_its_pdf(
    sqlite_ws: Path, smtp: SmtpServer, spawn: Callable[..., Process], tmp_path: Path
) -> None:
    last_month = parse_period("previous-month", utcnow())
    engine = make_engine(Workspace.open(sqlite_ws).settings.database.url)
    with engine.begin() as conn:
        people = add_contacts(conn, [(f"p{i}@corp.example", "sales") for i in range(10)])
        outcomes = [Outcome(p, click_after_s=600 if i < 3 else None) for i, p in enumerate(people)]
        insert_run(conn, "alpha", "sales", "staff", last_month.start + timedelta(days=2, hours=9), outcomes)
    engine.dispose()
    (sqlite_ws / "schedules" / "ceo.toml").write_text(
        SCHEDULE.format(zone=ZONE, at=local_time(-5)), encoding="utf-8"
    )

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
