"""Nothing goes out unapproved: `comms send` and the library refuse, record the run as blocked, and send
once the exact content is approved; an edit voids the approval; only approvers may approve."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from pipeline.approvals.ledger import approve
from pipeline.errors import ApprovalError, RunBlocked
from pipeline.runs import control, dispatch, start
from pipeline.storage.models import Approval, Run
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace
from tests.approvals.conftest import LEAD
from tests.support.cli import comms
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import CAMPAIGN, configure


def _runs(engine: Engine) -> list[Run]:
    with Session(engine) as db:
        return list(db.exec(select(Run).order_by(Run.id)).scalars())  # type: ignore[call-overload]


def _send(root: Path) -> control.RunReport:
    ws = Workspace.open(root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")
    return dispatch.dispatch_run(ws, run.id or 0)


def test_an_unapproved_campaign_is_refused_and_recorded_as_blocked(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine, smtp: SmtpServer
) -> None:
    add_contacts(6)
    with pytest.raises(RunBlocked) as refused:
        _send(approving_root)
    assert str(refused.value) == f"not sent: {CAMPAIGN} has no approval: run `comms approve {CAMPAIGN}`"
    assert smtp.messages == [] and smtp.connections == 0
    [run] = _runs(engine)
    assert (run.campaign, run.status, run.recipient_count) == (CAMPAIGN, RunStatus.blocked, 0)
    assert run.status_reason == f"{CAMPAIGN} has no approval: run `comms approve {CAMPAIGN}`"


def test_the_cli_refuses_in_one_line_and_a_test_send_still_goes(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine, smtp: SmtpServer
) -> None:
    add_contacts(3)
    refused = comms("send", CAMPAIGN, "--yes", cwd=approving_root)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"comms: error: not sent: {CAMPAIGN} has no approval: run `comms approve {CAMPAIGN}`\n"
    )
    assert smtp.messages == []
    tested = comms("send", CAMPAIGN, "--to", "reviewer@example.com", cwd=approving_root)
    assert tested.returncode == 0, tested.stderr
    assert [m.rcpt_tos for m in smtp.messages] == [("reviewer@example.com",)]
    assert [r.status for r in _runs(engine)] == [RunStatus.blocked]


def test_approving_lets_it_go_under_that_approval_and_the_log_records_it(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine, smtp: SmtpServer
) -> None:
    emails = add_contacts(6)
    with pytest.raises(RunBlocked):
        _send(approving_root)
    approval = approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD, note="copy signed off by sales")

    report = _send(approving_root)
    assert report.run.status == RunStatus.finished
    assert report.run.approval_id == approval.id
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(e for e in emails if e)
    [line] = (approving_root / "approvals.log").read_text(encoding="utf-8").splitlines()
    logged = json.loads(line)
    assert (logged["campaign"], logged["by"], logged["note"]) == (CAMPAIGN, LEAD, "copy signed off by sales")
    assert logged["hash"] == approval.content_hash
    shown = comms("runs", "show", str(report.run.id), cwd=approving_root)
    assert f"approved by {LEAD} (approval {approval.id}" in shown.stdout

    # The approval covers the audiences the copy and its schedules name, not any other.
    with pytest.raises(
        RunBlocked, match=r"goes to customers, customers-eu, not customers-billing: name customers-billing in"
    ):
        start.start_run(Workspace.open(approving_root), CAMPAIGN, "customers-billing", started_by="test")


def test_editing_one_word_after_approval_blocks_it_again(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine, smtp: SmtpServer
) -> None:
    add_contacts(4)
    approve(Workspace.open(approving_root), CAMPAIGN, by="Sam Okafor")
    copy = approving_root / "templates" / "copy" / f"{CAMPAIGN}.md"
    text = copy.read_text(encoding="utf-8")
    assert "Tighter tolerances" in text
    copy.write_text(text.replace("Tighter tolerances", "Tight tolerances", 1), encoding="utf-8")

    with pytest.raises(RunBlocked, match=r"has changed since \(the copy, layout or brand changed\)"):
        _send(approving_root)
    assert smtp.messages == []
    assert [r.status for r in _runs(engine)] == [RunStatus.blocked]

    # Putting the word back restores the approved content, and with it the approval.
    copy.write_text(text, encoding="utf-8")
    assert _send(approving_root).run.status == RunStatus.finished
    assert len(smtp.messages) == 4


def test_a_schedule_or_audience_edit_voids_it_too(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine
) -> None:
    add_contacts(2)
    approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    audience = approving_root / "audiences" / "customers.toml"
    audience.write_text(audience.read_text(encoding="utf-8") + "\n# a comment changes nothing\n", "utf-8")
    assert _send(approving_root).run.status == RunStatus.finished
    audience.write_text(
        audience.read_text(encoding="utf-8").replace("value = true", "value = false"), "utf-8"
    )
    with pytest.raises(RunBlocked, match=r"\(audience customers changed\)"):
        _send(approving_root)


def test_an_approval_by_someone_not_in_approvers_is_refused(approving_root: Path, engine: Engine) -> None:
    ws = Workspace.open(approving_root)
    with pytest.raises(ApprovalError, match=r"^comms.toml: mallory@example.com may not approve: "):
        approve(ws, CAMPAIGN, by="mallory@example.com")
    refused = comms("approve", CAMPAIGN, "--as", "Mallory", cwd=approving_root)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "comms: error: comms.toml: Mallory may not approve: [approvals] approvers"
    )
    with Session(engine) as db:
        assert list(db.exec(select(Approval)).scalars()) == []  # type: ignore[call-overload]
    assert not (approving_root / "approvals.log").exists()
    # Approvers are compared ignoring case.
    assert approve(ws, CAMPAIGN, by="sam okafor").approver == "sam okafor"


def test_an_approval_committed_in_approvals_log_counts_on_a_fresh_database(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine, tmp_path: Path
) -> None:
    add_contacts(2)
    approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    with engine.begin() as conn:  # as on another machine: the log came with the workspace, the rows did not
        conn.execute(Approval.__table__.delete())  # type: ignore[attr-defined]
    assert _send(approving_root).run.status == RunStatus.finished

    # A line by someone who is no longer an approver does not count.
    configure(approving_root, {"approvals": 'required = true\napprovers = ["someone.else@example.com"]'})
    with pytest.raises(RunBlocked, match="has no approval"):
        _send(approving_root)


def test_approvals_off_sends_without_one(
    approving_root: Path, add_contacts: Callable[..., list[str]], engine: Engine
) -> None:
    add_contacts(2)
    configure(approving_root, {"approvals": "required = false"})
    report = _send(approving_root)
    assert (report.run.status, report.run.approval_id) == (RunStatus.finished, None)
