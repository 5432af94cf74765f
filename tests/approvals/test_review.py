"""The review pack: previews at two widths, the text part, the audience in words, the next sends, and the
diff against the last approved version — from git in a repository, from stored sources elsewhere."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from markupsafe import escape

from pipeline.approvals.audit import approval_audit
from pipeline.approvals.ledger import approve
from pipeline.approvals.review import write_review
from pipeline.runs import control, start
from pipeline.workspace.folders import Workspace
from tests.approvals.conftest import LEAD
from tests.support.cli import comms

CAMPAIGN = "spring-launch"
BEFORE, AFTER = '  - title: "Tighter tolerances"', '  - title: "Tight tolerances"'
NOW = datetime(2027, 2, 20, 12, 0, tzinfo=UTC)


def _git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=Test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _edit_one_word(root: Path) -> None:
    copy = root / "templates" / "copy" / f"{CAMPAIGN}.md"
    text = copy.read_text(encoding="utf-8")
    assert BEFORE + "\n" in text
    copy.write_text(text.replace(BEFORE, AFTER, 1), encoding="utf-8")


def test_the_diff_after_an_edit_comes_from_git_in_a_repository(
    approving_root: Path, tmp_path: Path, add_contacts: Callable[..., list[str]]
) -> None:
    add_contacts(3)
    _git(approving_root, "init", "-q")
    _git(approving_root, "add", "-A")
    _git(approving_root, "commit", "-q", "-m", "spring launch, as written")
    approval = approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    assert approval.git_commit == _git(approving_root, "rev-parse", "HEAD").strip()
    _edit_one_word(approving_root)
    _git(approving_root, "commit", "-q", "-am", "copy: one word")

    pack = write_review(Workspace.open(approving_root), CAMPAIGN, tmp_path / "review", now=NOW)

    assert pack.diff_source == "git"
    assert pack.diff.startswith(f"diff --git a/templates/copy/{CAMPAIGN}.md b/templates/copy/{CAMPAIGN}.md\n")
    changed = [line for line in pack.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-" + BEFORE, "+" + AFTER]
    assert pack.status.startswith(f"not approved: {CAMPAIGN} was approved by {LEAD} on ")
    assert "changed since the last approval: the copy, layout or brand" in pack.notes
    out = tmp_path / "review"
    assert (out / "changes.diff").read_text(encoding="utf-8") == pack.diff
    # The check findings of the campaign as it is now: the sample has warnings and no errors.
    assert "checks: 0 errors" in " ".join(pack.notes)
    assert "warning" in (out / "checks.txt").read_text(encoding="utf-8")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'<span class="del">-{escape(BEFORE)}</span>' in index  # autoescaped: &#34;Tighter tolerances&#34;
    assert f'<span class="add">+{escape(AFTER)}</span>' in index
    assert 'style="width:375px;' in (out / "mobile.html").read_text(encoding="utf-8")
    assert 'style="width:1024px;' in (out / "desktop.html").read_text(encoding="utf-8")
    assert f'src="{CAMPAIGN}.html"' in (out / "mobile.html").read_text(encoding="utf-8")
    assert "Tight tolerances" in (out / f"{CAMPAIGN}.txt").read_text(encoding="utf-8")
    # The audience in words, its size today, and the schedule's next send.
    # the copy's own and spring-launch-eu's (whose rules the test contacts, without a country, miss)
    assert [(a.name, a.size) for a in pack.audiences] == [("customers", 3), ("customers-eu", 0)]
    assert pack.audiences[0].rules == [
        "subscribed to customers, not suppressed",
        "where marketing_consent is true",
    ]
    assert "<li>where marketing_consent is true</li>" in index
    assert [(schedule, f"{when:%Y-%m-%d %H:%M %Z}") for schedule, when in pack.next_sends] == [
        ("spring-launch-eu", "2027-03-01 09:00 CET")
    ]


def test_outside_git_the_diff_comes_from_the_sources_stored_with_the_approval(
    approving_root: Path, tmp_path: Path
) -> None:
    approval = approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    assert approval.git_commit is None
    _edit_one_word(approving_root)
    pack = write_review(Workspace.open(approving_root), CAMPAIGN, tmp_path / "review", now=NOW)
    assert pack.diff_source == "stored sources"
    changed = [line for line in pack.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-" + BEFORE, "+" + AFTER]

    # Approved again, the pack says so and shows no changes; the CLI writes the same pack.
    approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    shown = comms("review", CAMPAIGN, "--out", str(tmp_path / "again"), cwd=approving_root)
    assert shown.returncode == 0, shown.stderr
    assert f"approved by {LEAD} on " in shown.stdout
    assert (tmp_path / "again" / "changes.diff").read_text(encoding="utf-8") == ""


def test_the_audit_lists_voided_approvals_and_runs_sent_without_one(
    approving_root: Path, add_contacts: Callable[..., list[str]]
) -> None:
    add_contacts(2)
    ws = Workspace.open(approving_root)
    first = approve(ws, CAMPAIGN, by=LEAD)
    _edit_one_word(approving_root)
    audit = approval_audit(Workspace.open(approving_root))
    assert [(v.approval.id, v.changed, v.reapproved) for v in audit.voided] == [
        (first.id, ["the copy, layout or brand"], False)
    ]
    assert audit.sent_without_approval == []

    second = approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    approved_run = start.start_run(Workspace.open(approving_root), CAMPAIGN, started_by="test")
    # A campaign has one unfinished run per audience: the first is cancelled before the next starts.
    control.cancel_run(Workspace.open(approving_root), approved_run.id or 0)
    (approving_root / "comms.toml").write_text(
        (approving_root / "comms.toml")
        .read_text(encoding="utf-8")
        .replace("required = true", "required = false"),
        encoding="utf-8",
    )
    unapproved = start.start_run(Workspace.open(approving_root), CAMPAIGN, started_by="test")
    audit = approval_audit(Workspace.open(approving_root))
    assert [(v.approval.id, v.reapproved) for v in audit.voided] == [(first.id, True)]
    assert [r.id for r in audit.sent_without_approval] == [unapproved.id]
    assert approved_run.approval_id == second.id
