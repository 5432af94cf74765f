"""The `comms` command: parse, call the library, print. Nothing imports this package."""

from __future__ import annotations

import sys

import click
import typer

from pipeline.cli import assemble, contacts, dispatch, tracking
from pipeline.errors import CommsError

app = typer.Typer(
    help="Email campaigns as code: assemble, preview, resolve audiences, send, track.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (assemble, contacts, dispatch, tracking):
    module.register(app)


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 1, never a traceback."""
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
    except CommsError as exc:
        print(f"comms: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Abort:
        print("comms: aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int):
        sys.exit(code)
