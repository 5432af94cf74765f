"""The results pages: runs, a run's report, its click map and people, a campaign's series, A/B tests.

Every figure comes from pipeline.reports (the same views and glossary as `comms report`), and the
report sections are the HTML report's own (reports/sections.html.j2). A page is one entry in PAGES:
a route, a template and a function from the workspace and the route's parameters to the template's
context; a new results page is one more function, one more template and one more line there.

Privacy follows [reports] mode: the people page (who received the run and what each did) exists in
"individual" mode only (reports.people refuses otherwise), and breakdown cells below min_cell are
suppressed in "aggregate" mode by the views themselves (an A/B arm too: reports.ab).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.assembly.personalize import preview_recipient
from pipeline.delivery.engine import run_composer
from pipeline.errors import ReportError
from pipeline.reports import campaign_report, people, run_report
from pipeline.reports.ab import ab_tests, status_of
from pipeline.reports.glossary import BY_ID
from pipeline.reports.html import ab_table, page_context
from pipeline.runs.control import get_run, list_runs
from pipeline.runs.preview import preview_settings
from pipeline.storage.engines import opened
from pipeline.storage.models import utcnow
from pipeline.studio.frames import click_map
from pipeline.workspace.folders import Workspace

RUNS_LISTED = 100


def runs_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"title": "Runs", "runs": list_runs(ws, RUNS_LISTED)}


def run_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    run_id = int(params["run_id"])
    with opened(ws.settings) as engine:
        report = run_report(engine, ws.settings, run_id)
    return page_context(report, ws.settings) | {
        "run_id": run_id,
        "series": report.campaign,
        "individual": ws.settings.reports.mode == "individual",
        "ab": report.ab is not None,
    }


def click_map_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's frozen message, rendered for the [preview] contact as view-online renders it, with
    each link's share of the run's human clickers (the honeypot left out)."""
    run_id = int(params["run_id"])
    settings = preview_settings(ws)
    with opened(settings) as engine:
        report = run_report(engine, settings, run_id)
        run = get_run(engine, run_id)
    html = run_composer(settings, run).render(preview_recipient(settings), None).html
    shares = {link.index: (link.share, link.clickers) for link in report.links}
    honeypot = run.meta.get("honeypot")
    mapped = click_map(
        html,
        base_url=settings.tracking.base_url,
        secrets=settings.verifying_keys,
        shares=shares,
        honeypot=honeypot,
    )
    return {
        "title": f"Run {run_id}: click map",
        "run_id": run_id,
        "campaign": run.campaign,
        "frame": mapped,
        "links": report.links,
        "clickers": report.figures.counts["clickers"] if report.figures.counts else 0,
    }


def people_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    run_id = int(params["run_id"])
    with opened(ws.settings) as engine:
        rows = people(engine, ws.settings, run_id)  # ReportError unless [reports] mode = "individual"
    return {"title": f"Run {run_id}: people", "run_id": run_id, "people": rows}


def series_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    name = str(params["name"])
    with opened(ws.settings) as engine:
        report = campaign_report(engine, ws.settings, name)
    return page_context(report, ws.settings) | {"name": name}


def ab_tests_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    with opened(ws.settings) as engine:
        tests = ab_tests(engine, ws.settings, utcnow())
    return {"title": "A/B tests", "tests": tests, "labels": {m: BY_ID[m].label for m in BY_ID}}


def ab_test_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    """A run's test as `comms report run` shows it: the test, and once decided each arm's figures,
    the decision, who or what chose it, and the rule (as decided and stored, never recomputed)."""
    run_id = int(params["run_id"])
    with opened(ws.settings) as engine:
        report = run_report(engine, ws.settings, run_id)
    if report.ab is None:
        raise ReportError(f"run {run_id} ({report.campaign}) has no A/B test")
    decision = report.ab.get("decision")
    return {
        "title": f"Run {run_id}: A/B test",
        "campaign": report.campaign,
        "ab": report.ab,
        "metric": BY_ID[report.ab["test"]["metric"]].label,
        "progress": status_of(report.ab, utcnow()),
        "decision": decision,
        "arms": ab_table(decision) if decision else None,
    }


@dataclass(frozen=True)
class ResultPage:
    path: str  # a Starlette route path
    template: str
    build: Callable[[Workspace, Mapping[str, Any]], dict[str, Any]]


PAGES: tuple[ResultPage, ...] = (
    ResultPage("/runs", "runs.html.j2", runs_page),
    ResultPage("/runs/{run_id:int}", "run.html.j2", run_page),
    ResultPage("/runs/{run_id:int}/click-map", "click_map.html.j2", click_map_page),
    ResultPage("/runs/{run_id:int}/people", "people.html.j2", people_page),
    ResultPage("/series/{name}", "series.html.j2", series_page),
    ResultPage("/ab", "ab_tests.html.j2", ab_tests_page),
    ResultPage("/runs/{run_id:int}/ab", "ab_test.html.j2", ab_test_page),
)
