"""Runs through the library and the `comms` command: dry runs, test sends, run control, the file transport."""

from __future__ import annotations

import email
import json
import re
import signal
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from pipeline.errors import RunError
from pipeline.runs import control, dispatch, rehearsal, start
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.service.conftest import wait_until
from tests.support.cli import comms, fresh_interpreter, in_fresh_interpreter, loaded_packages
from tests.support.workspace import CAMPAIGN, configure, open_ws, smtp_sections


def _count(engine: Engine, model: type) -> int:
    with session(engine) as db:
        return db.exec(select(func.count()).select_from(model)).one()[0]


def test_dry_run_renders_every_message_and_records_nothing(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    add_contacts(25)

    report = rehearsal.dry_run(open_ws(ws_root), CAMPAIGN)

    assert (report.plan.recipients, report.rendered, report.failed) == (25, 25, 0)
    assert report.sample_to == "person0@example.com"
    assert report.sample_subject and report.sample_subject.startswith("First0,")
    assert "Hi First0," in (report.sample_text or "")
    assert _count(engine, Run) == 0
    assert not (ws_root / "outbox").exists()


def test_test_send_goes_to_the_given_addresses_only_and_is_never_a_delivery(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    add_contacts(5)
    configure(ws_root, smtp_sections(smtp.port))
    stranger = "reviewer@agency.example"

    sent, _ = rehearsal.test_send(open_ws(ws_root), CAMPAIGN, ["person3@example.com", stranger])

    assert [(s.email, s.personalised_as, s.result.code) for s in sent] == [
        ("person3@example.com", "contact", 250),
        (stranger, "preview", 250),
    ]
    subjects = {
        m.rcpt_tos[0]: email.message_from_bytes(m.data, policy=policy.default)["Subject"]
        for m in smtp.messages
    }
    assert subjects["person3@example.com"].startswith("[TEST] First3,")
    assert subjects[stranger].startswith("[TEST] Alex,")  # the [preview] sample contact
    assert _count(engine, Run) == 0 and _count(engine, Delivery) == 0
    # A test message belongs to no delivery, so its links go straight to their targets.
    html = email.message_from_bytes(smtp.messages[0].data, policy=policy.default).get_body(("html",))
    hrefs = re.findall(r'href="(https?://[^"]+)"', html.get_content())
    assert hrefs and not [h for h in hrefs if "/c/" in h or "/o/" in h]


def test_run_control_refuses_what_does_not_make_sense(ws_root: Path, engine: Engine, add_contacts) -> None:
    add_contacts(5)
    ws = open_ws(ws_root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")

    assert control.pause_run(ws, run.id).status == RunStatus.paused
    with pytest.raises(RunError, match="resume it first"):
        dispatch.dispatch_run(ws, run.id)
    assert control.resume_run(ws, run.id).status == RunStatus.sending
    assert dispatch.dispatch_run(ws, run.id).run.status == RunStatus.finished
    with pytest.raises(RunError, match="cannot be made paused"):
        control.pause_run(ws, run.id)
    with pytest.raises(RunError, match="no run 99"):
        control.show_run(ws, 99)


def test_runs_list_counts_every_status_and_starts_without_sqlalchemy(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    add_contacts(6)
    first = start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test")
    with engine.begin() as conn:
        ids = conn.execute(select(Delivery.id).where(Delivery.run_id == first.id).order_by(Delivery.id))
        sent, failed, *_ = ids.scalars()
        conn.execute(update(Delivery).where(Delivery.id == sent).values(status=DeliveryStatus.sent))
        conn.execute(update(Delivery).where(Delivery.id == failed).values(status=DeliveryStatus.failed))
    control.cancel_run(open_ws(ws_root), first.id or 0)  # the 4 queued become cancelled
    second = start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test", again=True)

    listed, loaded = in_fresh_interpreter(
        "from pipeline.cli import main; main()", "runs", "list", "--format", "json", "-w", str(ws_root)
    )
    rows = [
        (r["run"], r["status"], r["sent"], r["recipients"], r["failed"], r["left"])
        for r in json.loads(listed.stdout)
    ]
    assert rows == [(second.id, "sending", 0, 6, 0, 6), (first.id, "cancelled", 1, 6, 1, 0)]
    assert {"sqlalchemy", "sqlmodel", "alembic"} & loaded == set()


# What starting a run needs and sending it does not: a quarter of a sending process's memory.
STARTING = {"premailer", "lxml", "cssutils", "mjml", "coloraide", "markdown_it", "requests"}


def _sent_to(ws_root: Path, emails: list[str]) -> list[str]:
    """The address of each message in the outbox folder, from the list of EMAILS."""
    sent = [path.read_text() for path in (ws_root / "outbox").glob("*.eml")]
    assert all("List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message for message in sent)
    return sorted(next(e for e in emails if f"<{e}>" in message) for message in sent)


def test_comms_send_sends_from_a_process_that_never_loads_what_starting_needs(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    """The run is started (audience, approval, snapshot) in a process of its own, its content
    prepared (assembly, checks, freeze) in another; the process that sends it holds none of that,
    and every message still goes out."""
    emails = add_contacts(6)

    sent, loaded = in_fresh_interpreter(
        "from pipeline.cli import main; main()", "send", CAMPAIGN, "--yes", "-w", str(ws_root)
    )

    assert "run 1: 6 recipients queued" in sent.stdout and "finished" in sent.stdout
    assert _sent_to(ws_root, emails) == sorted(emails)
    assert loaded & STARTING == set()
    assert "cryptography" not in loaded  # the sample signs no DKIM: no key is loaded, nor OpenSSL's 6 MB


def test_a_resumed_run_is_sent_by_a_process_that_never_loads_assembly_or_the_checks(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    emails = add_contacts(6)
    run = start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test", paused_reason="held for the test")

    resumed, loaded = in_fresh_interpreter(
        "from pipeline.cli import main; main()", "runs", "resume", str(run.id), "-w", str(ws_root)
    )

    assert "finished" in resumed.stdout
    assert _sent_to(ws_root, emails) == sorted(emails)
    assert loaded & STARTING == set()


def _status(engine: Engine, run_id: int | None) -> str:
    with engine.connect() as conn:
        return conn.execute(select(Run.status).where(Run.id == run_id)).scalar_one()


def test_comms_worker_sends_from_a_process_that_never_loads_the_daemon_or_assembly(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    """`comms worker` only sends: a run someone started goes out from a worker that has loaded
    neither assembly and the checks, nor the timetable, the tracking server or A/B statistics."""
    emails = add_contacts(6)
    run = start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test")

    worker = fresh_interpreter("from pipeline.cli import main; main()", "worker", "-w", str(ws_root))
    try:
        wait_until(lambda: _status(engine, run.id) == RunStatus.finished, 60, f"run {run.id} to finish")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)

    assert worker.returncode == 0, stderr
    assert _sent_to(ws_root, emails) == sorted(emails)
    daemon_only = {"apscheduler", "uvicorn", "numpy", "scipy", "matplotlib", "weasyprint"}
    assert loaded_packages(stderr) & (STARTING | daemon_only) == set()


def test_comms_send_through_the_file_transport_then_runs_show(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    add_contacts(12)

    declined = comms("send", CAMPAIGN, "-w", str(ws_root), cwd=ws_root, input="n\n")
    assert declined.returncode != 0
    assert "customers: 12 recipients" in declined.stdout and "file: .eml files in outbox/" in declined.stdout
    assert _count(engine, Run) == 0

    sent = comms("send", CAMPAIGN, "--yes", "-w", str(ws_root), cwd=ws_root)
    assert sent.returncode == 0, sent.stderr
    assert len(list((ws_root / "outbox").glob("*.eml"))) == 12

    shown = comms("runs", "show", "1", "-w", str(ws_root), cwd=ws_root)
    assert shown.returncode == 0, shown.stderr
    assert "finished" in shown.stdout and "sent 12" in shown.stdout
    # Nobody has opened or clicked yet: the headline says so, with the interval of 0 out of 12.
    assert "delivered 12  human opens 0.0% (0.0-24.2%)  human clicks 0.0% (0.0-24.2%)" in shown.stdout
    report = comms("report", "run", "1", "--format", "json", "-w", str(ws_root), cwd=ws_root)
    assert report.returncode == 0, report.stderr
    assert '"delivered": 12' in report.stdout and '"honeypot"' not in report.stdout
    listed = comms("runs", "list", "-w", str(ws_root), cwd=ws_root)
    assert CAMPAIGN in listed.stdout
    with session(engine) as db:
        statuses = {d.status for d in db.exec(select(Delivery)).scalars()}
    assert statuses == {DeliveryStatus.sent}
