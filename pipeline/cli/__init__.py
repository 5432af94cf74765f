"""The `comms` command: parse, call the library, print. Nothing imports this package."""

from __future__ import annotations

import sys

import typer

from pipeline.cli import (
    approvals,
    assemble,
    bench,
    check,
    contacts,
    daemon,
    demo,
    dispatch,
    experiments,
    report,
    studio,
    tracking,
)
from pipeline.errors import CommsError, unwrap

app = typer.Typer(
    help="Email campaigns as code: assemble, preview, resolve audiences, send, track.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: Rich markup would eat square brackets, and help texts name [sections] of comms.toml.
    rich_markup_mode=None,
)
for module in (
    assemble,
    check,
    contacts,
    dispatch,
    experiments,
    report,
    tracking,
    daemon,
    approvals,
    bench,
    demo,
    studio,
):
    module.register(app)


def _one_line(exc: BaseException) -> str | None:
    """What a person is told about EXC, or None for a bug (which keeps its traceback)."""
    exc = unwrap(exc)
    if isinstance(exc, CommsError):
        return str(exc)
    if _is_database_error(exc):
        # The driver's first line says what happened (locked, refused, gone); the rest is SQL.
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"database: {detail[0] if detail else type(exc).__name__}"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None


# SQLAlchemy's errors, and the drivers' own (pipeline.storage.listing reads through them).
_DATABASE_ERRORS = (("sqlalchemy.exc", "SQLAlchemyError"), ("sqlite3", "Error"), ("psycopg", "Error"))


def _is_database_error(exc: BaseException) -> bool:
    """A database's error, without importing a database library for commands that never load it."""
    return any(
        (loaded := sys.modules.get(module)) is not None and isinstance(exc, getattr(loaded, name))
        for module, name in _DATABASE_ERRORS
    )


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 1, never a traceback.

    Typer's standalone mode already turns usage errors, Ctrl-C at a prompt and typer.Exit into
    messages and exit codes; what reaches this handler is our own errors, and the database or
    the file system failing under a command.
    """
    try:
        app()
    except (Exception, BaseExceptionGroup) as exc:
        message = _one_line(exc)
        if message is None:
            raise
        print(f"comms: error: {message}", file=sys.stderr)
        sys.exit(1)
