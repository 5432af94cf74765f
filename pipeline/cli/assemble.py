"""Commands that build messages without sending them: init and preview."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pipeline.cli.common import WorkspaceOption, console, err_console, open_workspace
from pipeline.errors import CommsError, RunError

if TYPE_CHECKING:
    from pipeline.runs.preview import PreviewResult


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("preview")(preview)


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
    blank: Annotated[
        bool, typer.Option("--blank", help="Neutral placeholders: no sample brand, people or live schedules.")
    ] = False,
) -> None:
    """Create a new campaigns workspace from the built-in sample (or a blank one).

    \b
    Example:
      comms init campaigns && cd campaigns && comms preview --all
    """
    from pipeline.workspace.init import init_workspace

    created = init_workspace(directory, blank=blank)
    console.print(f"Created workspace in {directory}:")
    for path in created:
        console.print(f"  {path.relative_to(directory)}")


def preview(
    campaign: Annotated[str | None, typer.Argument(help="Campaign name (templates/copy/NAME.md).")] = None,
    all_campaigns: Annotated[bool, typer.Option("--all", help="Preview every campaign.")] = False,
    contact: Annotated[
        str | None, typer.Option(help="Personalise as this contact from the database.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for NAME.html, NAME.txt and NAME.eml.")] = Path(
        "previews"
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """Write one recipient's message as .html, .txt and .eml, and print what a reviewer checks.

    \b
    Example:
      comms preview spring-launch --contact ada@example.com
    """
    from pipeline.runs.preview import preview_campaign

    ws = open_workspace(workspace)
    if all_campaigns == (campaign is not None):
        raise RunError("name one campaign, or give --all")
    names = ws.campaign_names() if all_campaigns or campaign is None else [campaign]
    out_dir = out if out.is_absolute() else ws.root / out
    failures = 0
    for name in names:
        try:
            result = preview_campaign(ws, name, out_dir, contact_email=contact)
        except CommsError as exc:
            if not all_campaigns:
                raise
            err_console.print(f"[red]✗ {name}[/red]: {exc}", highlight=False)
            failures += 1
            continue
        _show(result, ws.root)
    if failures:
        raise typer.Exit(1)


def _show(result: PreviewResult, root: Path) -> None:
    table = Table(title=f"✓ {result.campaign}", show_header=False, title_justify="left")
    table.add_row("subject", result.subject)
    table.add_row("from", result.sender)
    table.add_row("to", result.recipient)
    table.add_row("html", f"{_rel(result.html_path, root)}  ({result.html_bytes / 1024:.1f} KB)")
    table.add_row("text", f"{_rel(result.text_path, root)}  ({result.text_bytes / 1024:.1f} KB)")
    table.add_row("eml", f"{_rel(result.eml_path, root)}  ({result.eml_bytes / 1024:.1f} KB)")
    for warning in result.warnings:
        table.add_row("[yellow]warning[/yellow]", warning)
    console.print(table)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
