"""The `comms` command: parse, call the library, print. Nothing imports this package."""

from __future__ import annotations

import sys

import typer

from pipeline.cli import assemble, contacts, daemon, dispatch, tracking
from pipeline.errors import CommsError

app = typer.Typer(
    help="Email campaigns as code: assemble, preview, resolve audiences, send, track.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (assemble, contacts, dispatch, tracking, daemon):
    module.register(app)


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 1, never a traceback.

    Typer's standalone mode already turns usage errors, Ctrl-C at a prompt and typer.Exit into
    messages and exit codes; only our own errors reach this handler.
    """
    try:
        app()
    except CommsError as exc:
        print(f"comms: error: {exc}", file=sys.stderr)
        sys.exit(1)
