"""The results pages: runs, a run's report, its click map and people, a campaign's series, A/B tests,
the exec report with its files.

Every figure comes from pipeline.reports (the same views and glossary as `comms report`), and the
report sections are the HTML report's own (reports/sections.html.j2). A page is one entry in PAGES:
a route, a template and a function from the workspace and the request's parameters (the route's,
then the query's) to the template's context; a new results page is one more function, one more
template and one more line there.

The exec page shows the report exactly as `comms report exec` writes it: exec_html's page, whole,
in a sandboxed frame (it is a self-contained document with its own styles, which the studio's
would clash with), and its files are made by the same exec_files that write_exec writes with, so
a download has the bytes the command writes. Nothing is written anywhere.

Privacy follows [reports] mode: the people page (who received the run and what each did) exists in
"individual" mode only (reports.people refuses otherwise), and breakdown cells below min_cell are
suppressed in "aggregate" mode by the views themselves (A/B arms too, reports.ab; the exec report
too, in every format).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pipeline.assembly.personalize import preview_recipient
from pipeline.delivery.engine import run_composer
from pipeline.errors import ReportError
from pipeline.reports import (
    campaign_report,
    exec_files,
    exec_html,
    exec_report,
    parse_period,
    people,
    run_report,
)
from pipeline.reports.ab import ab_tests, status_of
from pipeline.reports.executive import Compare, ExecReport, exec_periods
from pipeline.reports.glossary import BY_ID
from pipeline.reports.html import ab_table, page_context
from pipeline.runs.control import get_run
from pipeline.runs.preview import preview_settings
from pipeline.storage.engines import opened
from pipeline.storage.listing import list_runs
from pipeline.storage.models import utcnow
from pipeline.studio.frames import click_map
from pipeline.workspace.folders import Workspace

RUNS_LISTED = 100
COMPARES: tuple[Compare, ...] = ("previous", "yoy")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


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


def _exec(ws: Workspace, params: Mapping[str, Any]) -> tuple[ExecReport, dict[str, Any]]:
    """The exec report for ?period= (default: the picker's) and ?compare=, and the picker."""
    now = utcnow()
    compare = params.get("compare") or "previous"
    if compare not in COMPARES:
        raise ReportError(f"compare {compare!r}: use previous or yoy")
    with opened(ws.settings) as engine:
        choice = exec_periods(engine, now)
        period = parse_period(params.get("period") or choice.default.label, now)
        report = exec_report(engine, ws, period, compare=compare)
    return report, {"choice": choice, "period": period.label, "compare": compare}


def exec_page(ws: Workspace, params: Mapping[str, Any]) -> dict[str, Any]:
    report, picker = _exec(ws, params)
    query = urlencode({"period": picker["period"], "compare": picker["compare"]})
    files = [(f"/exec/{name}?{query}", _file_label(name, report)) for name in exec_files(report, ws)]
    return picker | {
        "title": f"Exec report {report.period.label}",
        "frame": exec_html(report, ws),
        "files": files,
        "mode": report.mode,
    }


def _file_label(name: str, report: ExecReport) -> str:
    """exec-2027-Q1.pdf -> PDF, exec-2027-Q1-kpis.csv -> CSV: kpis."""
    table, _, fmt = name.removeprefix(f"exec-{report.period.label}").lstrip("-").rpartition(".")
    return f"{fmt.upper()}: {table}" if table else fmt.upper()


def exec_file(ws: Workspace, params: Mapping[str, Any], name: str) -> tuple[bytes, str]:
    """The exec report's file NAME (as write_exec names it) for the request's period, and its type."""
    report, _ = _exec(ws, params)
    files = exec_files(report, ws)
    if name not in files:
        raise ReportError(f"{name}: not a file of the exec report for {report.period.label}")
    return files[name](), MEDIA_TYPES[name.rpartition(".")[2]]


@dataclass(frozen=True)
class ResultPage:
    path: str  # a Starlette route path
    template: str
    build: Callable[[Workspace, Mapping[str, Any]], dict[str, Any]]
    nav: str = "runs"  # the navigation link it is under


PAGES: tuple[ResultPage, ...] = (
    ResultPage("/runs", "runs.html.j2", runs_page),
    ResultPage("/runs/{run_id:int}", "run.html.j2", run_page),
    ResultPage("/runs/{run_id:int}/click-map", "click_map.html.j2", click_map_page),
    ResultPage("/runs/{run_id:int}/people", "people.html.j2", people_page),
    ResultPage("/series/{name}", "series.html.j2", series_page),
    ResultPage("/ab", "ab_tests.html.j2", ab_tests_page),
    ResultPage("/runs/{run_id:int}/ab", "ab_test.html.j2", ab_test_page),
    ResultPage("/exec", "exec.html.j2", exec_page, nav="exec"),
)
