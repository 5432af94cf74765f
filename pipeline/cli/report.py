"""`comms report run|campaign|departments|period`: parse, call pipeline.reports, print or write."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from pipeline.cli.common import WorkspaceOption, console, open_workspace
from pipeline.reports import campaign_report, parse_period, people, period_report, run_report
from pipeline.reports.html import to_html
from pipeline.reports.render import Report, to_csv, to_json, to_text
from pipeline.storage.engines import connect
from pipeline.storage.models import utcnow
from pipeline.workspace.folders import Workspace

report_app = typer.Typer(help="Engagement reports: run, campaign, departments, period.", no_args_is_help=True)

Format = Annotated[
    Literal["text", "json", "csv"], typer.Option("--format", "-f", help="text, json or csv (every number).")
]
Html = Annotated[
    Path | None,
    typer.Option("--html", help="Also write a self-contained HTML page to FILE.", show_default=False),
]
PeriodArg = Annotated[str, typer.Option("--period", "-p", help="2027-Q1, 2027-03, 2027 or last-30d.")]


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


def _emit(ws: Workspace, report: Report, fmt: str, html: Path | None) -> None:
    text = {"text": to_text, "json": to_json, "csv": to_csv}[fmt](report)
    print(text, end="")
    if html is not None:
        html.write_text(to_html(report, ws.settings), encoding="utf-8")
        console.print(f"wrote {html}", style="dim", highlight=False) if fmt == "text" else None


@report_app.command("run")
def run(
    run_id: Annotated[int, typer.Argument(help="The run's number (see `comms runs list`).")],
    fmt: Format = "text",
    html: Html = None,
    show_people: Annotated[
        bool, typer.Option("--people", help='Per-person rows as CSV (needs [reports] mode = "individual").')
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Funnel, rates with intervals, links, engagement curve, departments, reasons, recommendations."""
    ws = open_workspace(workspace)
    engine = connect(ws.settings)
    try:
        if show_people:
            rows = people(engine, ws.settings, run_id)
            _print_people(rows)
            return
        _emit(ws, run_report(engine, ws.settings, run_id), fmt, html)
    finally:
        engine.dispose()


def _print_people(rows: list[dict]) -> None:
    import io

    from pipeline.audience.exporter import cell_of, writer

    out = io.StringIO()
    csv = writer(out)
    csv.writerow(["email", "department", "status", "opened", "clicked", "unsubscribed"])
    for row in rows:
        csv.writerow(
            [cell_of(row[k]) for k in ("email", "department", "status", "opened", "clicked", "unsubscribed")]
        )
    print(out.getvalue(), end="")


@report_app.command("campaign")
def campaign(
    name: Annotated[str, typer.Argument(help="A campaign (copy) or schedule name.")],
    fmt: Format = "text",
    html: Html = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Every run of a campaign or schedule: human click rate on a p-chart, unsubscribes, subjects."""
    ws = open_workspace(workspace)
    engine = connect(ws.settings)
    try:
        _emit(ws, campaign_report(engine, ws.settings, name), fmt, html)
    finally:
        engine.dispose()


@report_app.command("departments")
def departments(
    period: PeriodArg,
    by: Annotated[
        Literal["recipient", "sender"],
        typer.Option("--by", help="Group by the recipients' department or the sending department."),
    ] = "recipient",
    fmt: Format = "text",
    html: Html = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Figures per department for runs started in a period."""
    ws = open_workspace(workspace)
    engine = connect(ws.settings)
    try:
        _emit(ws, period_report(engine, ws.settings, parse_period(period, utcnow()), by=by), fmt, html)
    finally:
        engine.dispose()


@report_app.command("period")
def period(
    period: Annotated[str, typer.Argument(help="2027-Q1, 2027-03, 2027 or last-30d.")],
    compare: Annotated[
        Literal["previous", "yoy"] | None,
        typer.Option("--compare", help="Deltas with a z-test against the previous period or a year before."),
    ] = None,
    fmt: Format = "text",
    html: Html = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Totals, reach and a per-campaign table for runs started in a period."""
    ws = open_workspace(workspace)
    engine = connect(ws.settings)
    try:
        report = period_report(engine, ws.settings, parse_period(period, utcnow()), compare=compare)
        _emit(ws, report, fmt, html)
    finally:
        engine.dispose()
