"""`comms plan` shows each occurrence's stage and warns inside the lead time; `comms departments` says
whether each head's cadence is met or exceeded by the plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.approvals.ledger import approve
from pipeline.assembly.copy import load_copy
from pipeline.errors import CopyError, DepartmentError
from pipeline.timetable.departments import department_plan
from pipeline.timetable.plan import build_plan
from pipeline.workspace.departments import load_departments
from pipeline.workspace.folders import Workspace
from tests.approvals.conftest import LEAD
from tests.support.cli import comms

# Saturday 27 February 2027: spring-launch-eu goes out on Monday 1 March at 09:00 CET, 44 hours later.
NOW = datetime(2027, 2, 27, 12, 0, tzinfo=UTC)


def _stage(root: Path, stage: str, owner: str) -> None:
    copy = root / "templates" / "copy" / "spring-launch.md"
    text = copy.read_text(encoding="utf-8")
    edited = re.sub(r"(?m)^stage: .*\n^owner: .*\n", f"stage: {stage}\nowner: {owner}\n", text, count=1)
    assert edited != text
    copy.write_text(edited, encoding="utf-8")


def test_the_plan_warns_about_an_unapproved_campaign_inside_the_lead_time(approving_root: Path) -> None:
    _stage(approving_root, "in-review", "Dana Whitfield")
    plan = build_plan(Workspace.open(approving_root), days=14, now=NOW)
    launch = [o for o in plan.occurrences if o.campaign == "spring-launch"]
    assert [(o.stage, o.owner, o.approved) for o in launch] == [("in-review", "Dana Whitfield", False)]
    assert (
        "2027-03-01 09:00 CET spring-launch-eu: spring-launch is in-review, owner Dana Whitfield and not "
        "approved, 44 h before it goes out (lead time 2 days): it is blocked unless someone runs "
        "`comms approve spring-launch`"
    ) in plan.warnings
    assert "spring-launch was due for approval on 2027-02-22 (owner Dana Whitfield) and is in-review" not in (
        plan.warnings
    )
    copy = approving_root / "templates" / "copy" / "spring-launch.md"
    copy.write_text(copy.read_text(encoding="utf-8").replace("stage:", "due: 2027-02-22\nstage:", 1), "utf-8")
    plan = build_plan(Workspace.open(approving_root), days=14, now=NOW)
    assert "spring-launch was due for approval on 2027-02-22 (owner Dana Whitfield) and is in-review" in (
        plan.warnings
    )
    # A week earlier the same occurrence is outside the lead time: shown, not warned about.
    earlier = build_plan(Workspace.open(approving_root), days=14, now=datetime(2027, 2, 20, tzinfo=UTC))
    assert not [w for w in earlier.warnings if "spring-launch is" in w]

    approve(Workspace.open(approving_root), "spring-launch", by=LEAD)
    plan = build_plan(Workspace.open(approving_root), days=14, now=NOW)
    assert [o.approved for o in plan.occurrences if o.campaign == "spring-launch"] == [True]
    assert not [w for w in plan.warnings if "spring-launch is" in w]


def test_the_plan_command_shows_the_stage_column(approving_root: Path) -> None:
    _stage(approving_root, "copy-ready", "Dana Whitfield")
    shown = comms("plan", "--days", "400", cwd=approving_root)
    assert shown.returncode == 0, shown.stderr
    [line] = [
        line for line in shown.stdout.splitlines() if "spring-launch-eu" in line and "2027-03-01" in line
    ]
    assert line.rstrip().endswith("copy-ready, not approved")


def test_a_stage_that_is_not_one_of_the_five_is_refused_with_its_line(approving_root: Path) -> None:
    _stage(approving_root, "nearly-done", "Dana Whitfield")
    with pytest.raises(
        CopyError, match=r"^templates/copy/spring-launch.md:7: front matter `stage`: .*'in-review'"
    ):
        load_copy(Workspace.open(approving_root), "spring-launch")


def test_departments_say_whether_the_plan_meets_or_exceeds_each_cadence(approving_root: Path) -> None:
    # Three bulletins a week where production's head asked for at most two to the shop floor: 9 Mondays
    # and 17 Wednesdays and Fridays from 1 February to 1 April.
    (approving_root / "schedules" / "safety-extra.toml").write_text(
        'campaign = "plant-safety-update"\ntimezone = "Europe/London"\n\n'
        '[[trigger]]\ncron = "0 12 * * WED,FRI"\n',
        encoding="utf-8",
    )
    plan = department_plan(Workspace.open(approving_root), days=60, now=datetime(2027, 2, 1, tzinfo=UTC))
    verdicts = {d.department.name: (d.campaigns, len(d.occurrences), d.verdict) for d in plan.departments}
    no_whole_quarter = "not exceeded; no whole quarter in the window to tell whether it is met"
    assert verdicts == {
        "finance": ([], 0, no_whole_quarter),
        "production": (["plant-safety-update"], 9 + 17, "exceeded: 3 in the week of 2027-02-01 (at most 2)"),
        "sales": (["spring-launch"], 1, "not met: 0 in Feb 2027 (at least 1)"),
    }

    (approving_root / "schedules" / "safety-extra.toml").unlink()
    plan = department_plan(Workspace.open(approving_root), days=60, now=datetime(2027, 2, 1, tzinfo=UTC))
    production = next(d for d in plan.departments if d.department.name == "production")
    assert production.verdict == "met"
    assert len(production.occurrences) == 9  # every Monday from 1 February to 29 March


def test_the_departments_command_and_a_bad_cadence(approving_root: Path) -> None:
    shown = comms("departments", "--days", "30", cwd=approving_root)
    assert shown.returncode == 0, shown.stderr
    assert "Gareth Lloyd <gareth.lloyd@kestrelforge.example>" in shown.stdout
    assert "at most 2 per week to production staff" in shown.stdout

    sales = approving_root / "departments" / "sales.toml"
    text = sales.read_text(encoding="utf-8")
    sales.write_text(text.replace('"monthly"', '"now and then"'), encoding="utf-8")
    with pytest.raises(
        DepartmentError, match=r"^departments/sales.toml:4: cadence: cadence 'now and then' is not"
    ):
        load_departments(Workspace.open(approving_root))
