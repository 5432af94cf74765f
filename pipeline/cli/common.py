"""Options and helpers every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pipeline.workspace.folders import Workspace

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="COMMS_WORKSPACE",
        help="The campaigns workspace (default: the current directory).",
        show_default=False,
    ),
]

console = Console()
err_console = Console(stderr=True)


def open_workspace(path: Path | None) -> Workspace:
    """The workspace, loaded when a command runs: `comms --help` needs neither it nor pydantic."""
    from pipeline.workspace.folders import Workspace

    return Workspace.open(path)
