"""Commands for the timetable: `comms daemon`, `comms worker` and `comms plan` (parse, call, print)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import ProcessesOption, WorkspaceOption, console, open_workspace

if TYPE_CHECKING:
    from pipeline.timetable.plan import Occurrence
    from pipeline.workspace.folders import Workspace


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon_command)
    app.command("worker")(worker_command)
    app.command("plan")(plan_command)


def daemon_command(workspace: WorkspaceOption = None) -> None:
    """Run the timetable in schedules/ with its dispatch workers until SIGTERM (SIGHUP re-reads schedules/).

    A second daemon on the same database waits as a standby and takes over when the first dies.
    Logs one key=value line per event on stderr.

    \b
    Example:
      COMMS_SECRET=... comms daemon
    """
    from pipeline.logs import configure_logging
    from pipeline.service.daemon import serve_daemon

    ws = open_workspace(workspace)
    configure_logging()
    raise typer.Exit(serve_daemon(ws))


def worker_command(
    workspace: WorkspaceOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Workers here (default: [daemon] concurrency)."),
    ] = None,
    processes: ProcessesOption = None,
) -> None:
    """Send the outbox of every sending run until SIGTERM; on PostgreSQL, run as many as you like.

    Each worker's sending is spread over --processes processes (on SQLite this one is then the
    database's only writer, for all of them).

    \b
    Example:
      comms worker --concurrency 4 --processes 2
    """
    from pipeline.delivery.processes import default_processes
    from pipeline.logs import configure_logging
    from pipeline.service.worker import serve_worker

    ws = open_workspace(workspace)
    configure_logging()
    raise typer.Exit(serve_worker(ws, concurrency, processes or default_processes()))


def plan_command(
    workspace: WorkspaceOption = None,
    days: Annotated[int, typer.Option("--days", "-d", min=1, help="How far ahead to look.")] = 14,
) -> None:
    """The communication plan: every upcoming occurrence, in local time, with its audience's size today.

    \b
    Example:
      comms plan --days 30 | less -S
    """
    from pipeline.timetable.plan import build_plan

    ws = open_workspace(workspace)
    plan = build_plan(ws, days=days)
    console.print(f"plan for {plan.start:%Y-%m-%d %H:%M} UTC to {plan.end:%Y-%m-%d %H:%M} UTC")
    table = Table(box=box.SIMPLE_HEAD)
    headings = (
        "when (local)",
        "schedule",
        "campaign",
        "department",
        "audience",
        "recipients",
        "window",
        "stage",
    )
    for heading in headings:
        table.add_column(heading, no_wrap=True, justify="right" if heading == "recipients" else "left")
    for item in plan.occurrences:
        table.add_row(
            f"{item.when:%a %Y-%m-%d %H:%M %Z}",
            item.schedule,
            item.campaign,
            item.department,
            item.audience,
            "?" if item.recipients is None else str(item.recipients),
            item.window or "",
            item.stage + {True: ", approved", False: ", not approved", None: ""}[item.approved],
        )
    if plan.occurrences:
        console.print(table)
    else:
        console.print("nothing scheduled")
    _print_tests(ws, plan.occurrences)
    for warning in plan.warnings:
        console.print(f"[yellow]warning[/yellow]  {escape(warning)}")


def _print_tests(ws: Workspace, occurrences: list[Occurrence]) -> None:
    """Each planned campaign's A/B test against its audience's size today: the sample it needs."""
    from pipeline.errors import CommsError
    from pipeline.experiments.planning import plan_lines

    seen: set[str] = set()
    for item in occurrences:
        if item.campaign in seen or item.recipients is None:
            continue
        seen.add(item.campaign)
        try:
            lines = plan_lines(ws, item.campaign, item.recipients)
        except CommsError:  # the plan's own warnings already name a copy that does not load
            continue
        for number, line in enumerate(lines):
            label = f"A/B test {item.campaign}:" if number == 0 else ""
            console.print(f"{label} {line}" if label else f"  {line}", highlight=False, markup=False)
