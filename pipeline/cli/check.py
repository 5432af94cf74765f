"""`comms check`: run the checks and print the findings (parse, call pipeline.checks, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import WorkspaceOption, console, err_console, open_workspace
from pipeline.errors import RunError


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)


def check_command(
    campaigns: Annotated[
        list[str] | None, typer.Argument(help="Campaign names (templates/copy/NAME.md).")
    ] = None,
    all_campaigns: Annotated[bool, typer.Option("--all", help="Check every campaign.")] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="text, json, github (workflow annotations) or junit.")
    ] = "text",
    out: Annotated[
        Path | None, typer.Option(help="Write the report to this file instead of the terminal.")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check brand, accessibility, compatibility, deliverability and content; exit 1 on an error.

    \b
    Example:
      comms check --all --format github
    """
    from pipeline.checks.deliverability import spamassassin_available
    from pipeline.checks.formats import FORMATS, render
    from pipeline.checks.runner import check_variants

    ws = open_workspace(workspace)
    if fmt not in FORMATS:
        raise RunError(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    if all_campaigns == bool(campaigns):
        raise RunError("name one or more campaigns, or give --all")
    names = ws.campaign_names() if all_campaigns else list(campaigns or [])
    reports = [report for name in names for report in check_variants(ws, name)]
    output = render(reports, fmt)
    if out is not None:
        out.write_text(output + "\n", encoding="utf-8")
    elif fmt == "text":
        console.print(output, highlight=False, markup=False, soft_wrap=True)
    else:
        print(output)
    if fmt == "text" and ws.settings.checks.spamassassin and not spamassassin_available():
        err_console.print(
            "note: spamassassin is not installed, so deliverability.spam-score did not run", highlight=False
        )
    if any(report.errors for report in reports):
        raise typer.Exit(1)
