"""`comms report run|campaign|departments|period`: parse, call pipeline.reports, print or write.

The library is imported inside each command, so `comms --help` loads no database code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from pipeline.cli.common import WorkspaceOption, console, open_workspace

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pipeline.reports.render import Report
    from pipeline.workspace.folders import Workspace
    from pipeline.workspace.settings import Settings

report_app = typer.Typer(
    help="Engagement reports: run, campaign, departments, period, and the exec report.", no_args_is_help=True
)

Format = Annotated[
    Literal["text", "json", "csv"], typer.Option("--format", "-f", help="text, json or csv (every number).")
]
Html = Annotated[
    Path | None,
    typer.Option("--html", help="Also write a self-contained HTML page to FILE.", show_default=False),
]
PeriodOption = Annotated[str, typer.Option("--period", "-p", help="2027-Q1, 2027-03, 2027 or last-30d.")]


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


def _emit(ws: Workspace, build: Any, fmt: str, html: Path | None) -> None:
    """Run BUILD(engine, settings) on the workspace's database and print (and write) the report."""
    from pipeline.reports.html import to_html
    from pipeline.reports.render import to_csv, to_json, to_text
    from pipeline.storage.engines import opened

    with opened(ws.settings) as engine:
        report: Report = build(engine, ws.settings)
    print({"text": to_text, "json": to_json, "csv": to_csv}[fmt](report), end="")
    if html is not None:
        html.write_text(to_html(report, ws.settings), encoding="utf-8")
        if fmt == "text":
            console.print(f"wrote {html}", style="dim", highlight=False)


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
    """Funnel, rates with intervals, links, engagement curve, departments, reasons, recommendations.

    \b
    Example:
      comms report run 12 --html run-12.html
    """
    from pipeline.reports import people, run_report

    ws = open_workspace(workspace)
    if show_people:
        _print_people(ws, lambda engine, settings: people(engine, settings, run_id))
        return
    _emit(ws, lambda engine, settings: run_report(engine, settings, run_id), fmt, html)


def _print_people(ws: Workspace, build: Any) -> None:
    import io

    from pipeline.audience.exporter import cell_of, writer
    from pipeline.storage.engines import opened

    with opened(ws.settings) as engine:
        rows = build(engine, ws.settings)
    columns = ("email", "department", "status", "opened", "clicked", "unsubscribed")
    out = io.StringIO()
    csv = writer(out)
    csv.writerow(columns)
    for row in rows:
        csv.writerow([cell_of(row[k]) for k in columns])
    print(out.getvalue(), end="")


@report_app.command("campaign")
def campaign(
    name: Annotated[str, typer.Argument(help="A campaign (copy) or schedule name.")],
    fmt: Format = "text",
    html: Html = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Every run of a campaign or schedule: human click rate on a p-chart, unsubscribes, subjects.

    \b
    Example:
      comms report campaign plant-safety-update --format csv
    """
    from pipeline.reports import campaign_report

    _emit(
        open_workspace(workspace), lambda engine, settings: campaign_report(engine, settings, name), fmt, html
    )


def _period(engine: Engine, settings: Settings, text: str, **options: Any) -> Report:
    from pipeline.reports import parse_period, period_report
    from pipeline.storage.models import utcnow

    return period_report(engine, settings, parse_period(text, utcnow()), **options)


@report_app.command("departments")
def departments(
    period: PeriodOption,
    by: Annotated[
        Literal["recipient", "sender"],
        typer.Option("--by", help="Group by the recipients' department or the sending department."),
    ] = "recipient",
    fmt: Format = "text",
    html: Html = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Figures per department for runs started in a period.

    \b
    Example:
      comms report departments --period 2027-Q1 --by recipient
    """
    _emit(open_workspace(workspace), lambda e, s: _period(e, s, period, by=by), fmt, html)


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
    """Totals, reach and a per-campaign table for runs started in a period.

    \b
    Example:
      comms report period 2027-03 --compare yoy
    """
    _emit(open_workspace(workspace), lambda e, s: _period(e, s, period, compare=compare), fmt, html)


@report_app.command("exec")
def exec_(
    period: PeriodOption,
    compare: Annotated[
        Literal["previous", "yoy"],
        typer.Option("--compare", help="Changes against the previous period or the same one a year before."),
    ] = "previous",
    out: Annotated[
        Path, typer.Option("--out", help="The folder the files are written to (relative: to the workspace).")
    ] = Path("reports"),
    formats: Annotated[
        str, typer.Option("--format", "-f", help="Comma-separated: html, pdf, csv (a file per table), json.")
    ] = "html,pdf,csv,json",
    workspace: WorkspaceOption = None,
) -> None:
    """The report for the head of the company: KPI tiles with trend and target, departments side by
    side, best and worst campaigns, A/B learnings, notes from reports/notes/PERIOD.md with the
    recommendations that fired, and the glossary. Writes exec-PERIOD.html, .pdf, -TABLE.csv, .json.

    \b
    Example:
      comms report exec --period 2027-Q1 --compare yoy --out reports/ --format html,pdf
    """
    from pipeline.reports import exec_report, parse_period, write_exec
    from pipeline.reports.exec_render import kpi_lines
    from pipeline.storage.engines import opened
    from pipeline.storage.models import utcnow

    ws = open_workspace(workspace)
    chosen = parse_period(period, utcnow())
    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    with opened(ws.settings) as engine:
        report = exec_report(engine, ws, chosen, compare=compare)
    target = out if out.is_absolute() else ws.root / out  # as `comms preview --out` does
    for line in kpi_lines(report):
        print(line)
    for path in write_exec(report, ws, target, wanted):
        console.print(f"wrote {path}", style="dim", highlight=False)
