"""Privacy modes, the campaign series (p-chart) and period views over runs built with known events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine

from pipeline.errors import ReportError
from pipeline.reports import campaign_report, parse_period, people, period_report, run_report, wilson
from pipeline.reports.glossary import p_chart_limits, two_proportion_z
from pipeline.reports.render import to_csv, to_json
from pipeline.workspace.settings import Settings
from tests.reports.conftest import build_run

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def team(prefix: str, sizes: dict[str, int]) -> list[dict]:
    return [
        {"email": f"{prefix}{dept}{i}@corp.example", "attributes": {"department": dept}}
        for dept, size in sizes.items()
        for i in range(size)
    ]


def click(messages, emails) -> None:
    for email in emails:
        httpx.get(messages[email].clicks[0], headers={"User-Agent": FIREFOX}, follow_redirects=False)


def test_aggregate_mode_suppresses_departments_under_min_cell(
    settings: Settings, engine: Engine, base_url: str
) -> None:
    run_id, messages = build_run(settings, engine, team("a", {"sales": 6, "legal": 2}))
    click(messages, ["asales0@corp.example", "alegal0@corp.example"])
    settings.reports.mode = "aggregate"
    report = run_report(engine, settings, run_id)
    rows = {row.label: row.figures for row in report.departments}
    assert rows["legal"].suppressed and rows["legal"].counts is None
    assert rows["legal"].rates["human_click_rate"] is None
    assert not rows["sales"].suppressed and rows["sales"].rates["human_click_rate"] == wilson(1, 6)
    assert "alegal0" not in to_json(report) and "legal," not in to_csv(report).replace("departments", "")
    # The run's own totals still count everyone.
    assert report.figures.counts is not None and report.figures.counts["clickers"] == 2
    with pytest.raises(ReportError, match='mode = "individual"'):
        people(engine, settings, run_id)
    settings.reports.mode = "individual"
    listed = {row["email"]: row["clicked"] for row in people(engine, settings, run_id)}
    assert listed["asales0@corp.example"] is True and listed["asales1@corp.example"] is False


def test_campaign_series_flags_runs_outside_the_p_chart_limits(
    settings: Settings, engine: Engine, base_url: str
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    clicked_per_run = [5, 5, 5, 0]
    ids = []
    for n, clicked in enumerate(clicked_per_run):
        run_id, messages = build_run(
            settings,
            engine,
            team(f"r{n}", {"sales": 20}),
            campaign="weekly",
            started_at=start + timedelta(days=7 * n),
            list_name=f"weekly{n}",
        )
        click(messages, [f"r{n}sales{i}@corp.example" for i in range(clicked)])
        ids.append(run_id)
    report = campaign_report(engine, settings, "weekly")
    p_bar = 15 / 80
    assert report.p_bar == pytest.approx(p_bar)
    lower, upper = p_chart_limits(p_bar, 20)
    assert [(p.run_id, p.p, p.outside) for p in report.points] == [
        (ids[0], 0.25, ""),
        (ids[1], 0.25, ""),
        (ids[2], 0.25, ""),
        (ids[3], 0.0, "below" if lower > 0.0 else ""),
    ]
    assert report.points[0].lower == pytest.approx(lower) and report.points[0].upper == pytest.approx(upper)

    january = period_report(engine, settings, parse_period("last-60d", datetime.now(UTC)), compare="previous")
    assert january.totals.counts is not None and january.totals.counts["clickers"] == 15
    assert january.reach["reach"] == 80 and january.reach["engaged_reach"] == 15
    assert january.reach["dormant"] == 65
    weeks = 60 / 7
    assert january.reach["messages_per_contact_per_week"] == pytest.approx(80 / 80 / weeks)
    assert january.compare is not None and january.compare.label == "last-60d before"
    assert january.before is not None and january.before.counts is not None
    assert january.before.counts["delivered"] == 0
    by_recipient = period_report(
        engine, settings, parse_period("last-60d", datetime.now(UTC)), by="recipient"
    )
    assert [
        (row.label, row.figures.counts["delivered"]) for row in by_recipient.rows if row.figures.counts
    ] == [("sales", 80)]


def test_two_proportion_z_and_periods() -> None:
    assert two_proportion_z(50, 1000, 80, 1000) == pytest.approx(-2.72, abs=0.01)
    now = datetime(2027, 5, 10, tzinfo=UTC)
    q1 = parse_period("2027-Q1", now)
    assert (q1.start, q1.end) == (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
    assert parse_period("last-30d", now).start == now - timedelta(days=30)
    with pytest.raises(ReportError, match="2027-Q5"):
        parse_period("2027-Q5", now)
    # The relative names are the last complete calendar period; January's goes back a year.
    assert [
        parse_period(name, now).label for name in ("previous-month", "previous-quarter", "previous-year")
    ] == [
        "2027-04",
        "2027-Q1",
        "2026",
    ]
    january = datetime(2027, 1, 3, tzinfo=UTC)
    assert parse_period("previous-month", january).label == "2026-12"
    assert parse_period("previous-quarter", january).label == "2026-Q4"
