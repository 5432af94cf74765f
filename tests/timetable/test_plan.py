"""`comms plan`: the upcoming occurrences of the sample timetable, with sizes and warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.audience.importer import import_contacts
from pipeline.storage.engines import make_engine, upgrade
from pipeline.timetable.plan import build_plan
from pipeline.workspace.folders import Workspace
from tests.support.cli import comms
from tests.support.workspace import configure

MONDAY_WEEK = datetime(2027, 2, 26, tzinfo=UTC)  # Friday before the spring launch


@pytest.fixture
def planned(workspace_dir: Path, database_url: str) -> Path:
    """The sample workspace and its sample contacts, plus a billing campaign the same day and a broken one."""
    configure(workspace_dir, {"database": f'url = "{database_url}"'})
    upgrade(database_url)
    engine = make_engine(database_url)
    import_contacts(engine, workspace_dir / "audiences" / "customers.csv", list_name="customers")
    import_contacts(engine, workspace_dir / "audiences" / "staff.csv", list_name="staff")
    engine.dispose()
    schedules = workspace_dir / "schedules"
    (schedules / "billing.toml").write_text(
        'campaign = "billing-portal"\ntimezone = "Europe/Warsaw"\n[[trigger]]\nat = "2027-03-01T11:00"\n'
    )
    (schedules / "broken.toml").write_text(
        'campaign = "no-such-copy"\naudience = "staff"\ntimezone = "Europe/London"\n'
        '[[trigger]]\ncron = "0 12 * * TUE"\n'
    )
    (schedules / "off.toml").write_text(
        'campaign = "q3-results"\ntimezone = "UTC"\nenabled = false\n[[trigger]]\ncron = "* * * * *"\n'
    )
    return workspace_dir


def test_the_plan_lists_each_occurrence_in_local_time_with_its_audience_size(planned: Path) -> None:
    plan = build_plan(Workspace.open(planned), days=7, now=MONDAY_WEEK)

    rows = [
        (f"{o.when:%Y-%m-%d %H:%M %Z}", o.schedule, o.campaign, o.department, o.audience, o.recipients)
        for o in plan.occurrences
    ]
    assert rows == [
        (
            "2027-03-01 06:30 GMT",
            "plant-safety-weekly",
            "plant-safety-update",
            "production",
            "production-team",
            49,
        ),
        ("2027-03-01 09:00 CET", "spring-launch-eu", "spring-launch", "sales", "customers-eu", 87),
        ("2027-03-01 11:00 CET", "billing", "billing-portal", "finance", "customers-billing", 153),
        ("2027-03-02 12:00 GMT", "broken", "no-such-copy", "", "staff", 73),
    ]
    assert plan.warnings == [
        "schedules/broken.toml: campaign no-such-copy does not assemble: templates/copy/no-such-copy.md: "
        "no campaign named 'no-such-copy' (campaigns: billing-portal, plant-safety-update, q3-results, "
        "spring-launch, tooling-offer)",
        "2027-03-01: spring-launch (customers-eu) and billing-portal (customers-billing) both reach 78 "
        "contacts that day",
    ]


def test_the_plan_warns_about_contacts_the_weekly_cap_will_skip(planned: Path) -> None:
    configure(planned, {"dispatch": "max_per_week = 1"})

    plan = build_plan(Workspace.open(planned), days=7, now=MONDAY_WEEK)

    capped = [w for w in plan.warnings if "max_per_week" in w]
    assert capped == [
        "2027-03-01 11:00 CET billing: 78 contacts will already have had max_per_week=1 messages in 7 days "
        "and will be skipped",
        "2027-03-02 12:00 GMT broken: 43 contacts will already have had max_per_week=1 messages in 7 days "
        "and will be skipped",
    ]


def test_comms_plan_prints_the_table_and_the_warnings(planned: Path) -> None:
    result = comms("plan", "--days", "400", "--workspace", str(planned), cwd=planned)

    assert result.returncode == 0, result.stderr
    assert "spring-launch-eu" in result.stdout and "customers-eu" in result.stdout
    assert "Mon 2027-03-01 09:00 CET" in result.stdout
    assert "warning  schedules/broken.toml: campaign no-such-copy does not assemble" in result.stdout
    assert "q3-results" not in result.stdout.split("warning")[0]  # the disabled schedule
