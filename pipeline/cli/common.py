"""Options and helpers every command shares: the workspace, the consoles, and --format for listings."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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

# Outside a terminal (a pipe, a log file) nothing is cut to 80 columns: lines are as long as they are.
_UNCUT = 10_000


def _console(stderr: bool = False) -> Console:
    found = Console(stderr=stderr)
    return found if found.is_terminal else Console(stderr=stderr, width=_UNCUT)


console = _console()
err_console = _console(stderr=True)


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


ProcessesOption = Annotated[
    int | None,
    typer.Option(
        "--processes",
        "-p",
        min=1,
        help=(
            "Sending processes (default: one per core, at most one per 2,000 deliveries);"
            " [transport] connections and [rate] are shared."
        ),
        show_default=False,
    ),
]

FormatOption = Annotated[
    Format,
    typer.Option("--format", "-f", help="table for people; json or csv for scripts.", case_sensitive=False),
]


def print_rows(
    headings: Sequence[str], rows: Sequence[Sequence[Any]], output: Format, *, right: Sequence[str] = ()
) -> None:
    """ROWS under HEADINGS as a table, a JSON array of objects, or CSV, on standard output.

    JSON keeps numbers and None as they are and gives times in ISO 8601; the table shows None as "-"
    and times to the minute.
    """
    if output is Format.json:
        print(
            json.dumps(
                [dict(zip(headings, row, strict=True)) for row in rows], ensure_ascii=False, default=_iso
            )
        )
        return
    if output is Format.csv:
        from pipeline.audience.exporter import writer

        out = writer(sys.stdout)  # formula-safe: a cell may come from a contact's data
        out.writerow(headings)
        for row in rows:
            out.writerow("" if cell is None else str(cell) for cell in row)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for heading in headings:
        table.add_column(heading, no_wrap=True, justify="right" if heading in right else "left")
    for row in rows:
        table.add_row(*(_cell(cell) for cell in row))
    console.print(table)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return escape(str(value))


def open_workspace(path: Path | None) -> Workspace:
    """The workspace, loaded when a command runs: `comms --help` needs neither it nor pydantic."""
    from pipeline.workspace.folders import Workspace

    return Workspace.open(path)
