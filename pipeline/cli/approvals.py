"""Commands for sign-off: `comms approve`, `comms review`, `comms departments` (parse, call, print)."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import WorkspaceOption, console, open_workspace

if TYPE_CHECKING:
    from pipeline.workspace.folders import Workspace

Campaign = Annotated[str, typer.Argument(help="The campaign: templates/copy/CAMPAIGN.md.")]


def register(app: typer.Typer) -> None:
    app.command("approve")(approve_command)
    app.command("review")(review_command)
    app.command("departments")(departments_command)


def _default_approver(ws: Workspace) -> str:
    """Who is approving, when --as is not given: git's user.email for the workspace, else the login."""
    from pipeline.approvals.ledger import git

    try:
        return git(ws, "config", "user.email").strip() or getpass.getuser()
    except (OSError, subprocess.CalledProcessError):
        return getpass.getuser()


def approve_command(
    campaign: Campaign,
    as_: Annotated[
        str | None,
        typer.Option("--as", help="Approver's name or email (default: git user.email, else the login)."),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Why, or on what condition.")] = "",
    workspace: WorkspaceOption = None,
) -> None:
    """Approve CAMPAIGN exactly as it is now; any later change to it voids the approval.

    \b
    Example:
      comms approve spring-launch --note "copy and audience checked"
    """
    from pipeline.approvals.ledger import approve

    ws = open_workspace(workspace)
    approval = approve(ws, campaign, by=as_ or _default_approver(ws), note=note)
    console.print(
        f"approved {campaign} as {approval.approver}: content {approval.content_hash[:12]}, "
        f"approval {approval.id}, recorded in {ws.approvals_log.name}",
        highlight=False,
    )


def review_command(
    campaign: Campaign,
    out: Annotated[Path, typer.Option("--out", help="Folder for the review pack.")] = Path("review"),
    workspace: WorkspaceOption = None,
) -> None:
    """Write what an approver reads into one folder: previews, text, audience, schedule, diff.

    \b
    Example:
      comms review spring-launch --out review
    """
    from pipeline.approvals.review import write_review

    ws = open_workspace(workspace)
    pack = write_review(ws, campaign, out if out.is_absolute() else Path.cwd() / out)
    console.print(f"review pack for {campaign} in {pack.index}", highlight=False)
    console.print(f"  {pack.status}", highlight=False)
    for note in pack.notes:
        console.print(f"  [yellow]note[/yellow]  {escape(note)}")


def departments_command(
    workspace: WorkspaceOption = None,
    days: Annotated[int, typer.Option("--days", "-d", min=1, help="The plan's window, in days.")] = 90,
) -> None:
    """Departments and their heads, the campaigns planned for each, and whether their cadence holds.

    \b
    Example:
      comms departments --days 30
    """
    from pipeline.timetable.departments import department_plan

    plan = department_plan(open_workspace(workspace), days=days)
    console.print(f"departments, planned {plan.start:%Y-%m-%d} to {plan.end:%Y-%m-%d}")
    table = Table(box=box.SIMPLE_HEAD)
    for heading in ("department", "head", "cadence", "planned", "campaigns", "cadence in the plan"):
        table.add_column(heading, justify="right" if heading == "planned" else "left")
    for item in plan.departments:
        dept = item.department
        table.add_row(
            dept.name,
            f"{dept.head_name} <{dept.head_email}>",
            dept.cadence.text if dept.cadence else "-",
            str(len(item.occurrences)),
            ", ".join(item.campaigns) or "-",
            item.verdict,
        )
    console.print(table)
    for warning in plan.warnings:
        console.print(f"[yellow]warning[/yellow]  {escape(warning)}")
