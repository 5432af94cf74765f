"""Commands for what comes back after sending: the tracking server, bounce and complaint ingestion."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import WorkspaceOption, console, err_console, open_workspace
from pipeline.errors import CommsError, DatabaseError

if TYPE_CHECKING:
    from pipeline.feedback.bounces import Ingested, Preview

# sysexits.h EX_TEMPFAIL: an MTA keeps a piped message and tries again later instead of bouncing it.
EX_TEMPFAIL = 75
DEFAULT_LISTEN = "127.0.0.1:8025"

bounces_app = typer.Typer(help="Bounces and complaints: read DSN and ARF reports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.add_typer(bounces_app, name="bounces")


def serve_command(
    workspace: WorkspaceOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: [tracking] listen).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: [tracking] listen).")] = None,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="Reverse proxies whose X-Forwarded-For is trusted (comma-separated).")
    ] = "127.0.0.1",
) -> None:
    """Run the tracking server: opens, clicks, unsubscribe, view online, preferences, webhooks.

    \b
    Example:
      comms serve --host 0.0.0.0 --port 8025
    """

    from pipeline.feedback.server import create_app
    from pipeline.feedback.serving import StoppingServer, tracking_config
    from pipeline.storage.engines import connect
    from pipeline.workspace.settings import shown_url

    ws = open_workspace(workspace)
    settings = ws.settings
    listen_host, _, listen_port = (settings.tracking.listen or DEFAULT_LISTEN).rpartition(":")
    engine = connect(settings)
    app = create_app(settings, engine, workspace=ws)
    chosen_host, chosen_port = host or listen_host, port or int(listen_port)
    console.print(
        f"tracking server on http://{chosen_host}:{chosen_port} for {shown_url(settings.tracking.base_url)}"
    )
    try:
        config = tracking_config(
            app,
            settings,
            host=chosen_host,
            port=chosen_port,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            log_level="info",
        )
        StoppingServer(config).run()
    finally:
        engine.dispose()


def _print(outcomes: list[Ingested]) -> None:
    table = Table("kind", "delivery", "class", "suppressed", "note")
    for outcome in outcomes:
        table.add_row(
            outcome.kind,
            str(outcome.delivery_id or "-"),
            outcome.severity or "-",
            outcome.suppressed or "-",
            escape(outcome.note),
        )
    console.print(table)
    counts = Counter(
        o.kind if o.delivery_id or o.kind == "ignored" else f"unattributed {o.kind}" for o in outcomes
    )
    console.print(", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no messages")


@bounces_app.command("ingest")
def ingest_command(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Message files, mbox files, Maildir folders, or - for one message on stdin (the default)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print what each message is and which delivery it is tied to; change nothing."
        ),
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Read bounce and complaint reports and apply them (suppressions, events, failed deliveries).

    With - it reads one message on stdin: use it as an MTA pipe target for the bounce address.
    If the database is unreachable it exits 75 (EX_TEMPFAIL) so the MTA keeps the message.

    \b
    Example:
      comms bounces ingest bounces.mbox
    """
    from pipeline.feedback.bounces import ingest_message, ingest_path, preview_path
    from pipeline.storage.engines import connect

    settings = open_workspace(workspace).settings
    paths = sources or ["-"]
    if paths != ["-"] or dry_run:
        if "-" in paths:
            raise typer.BadParameter("- (one message on stdin) goes alone, without files or --dry-run")
        engine = connect(settings)
        try:
            if dry_run:
                _print_previews([row for path in paths for row in preview_path(engine, settings, Path(path))])
            else:
                _print([outcome for path in paths for outcome in ingest_path(engine, settings, Path(path))])
        finally:
            engine.dispose()
        return
    raw = sys.stdin.buffer.read()
    try:
        engine = connect(settings)
        try:
            outcome = ingest_message(engine, settings, raw, source="stdin", location="stdin")
        finally:
            engine.dispose()
    except DatabaseError as exc:
        err_console.print(f"comms: error: {escape(str(exc))} (the MTA should retry later)")
        raise typer.Exit(EX_TEMPFAIL) from None
    console.print(
        f"{outcome.kind} delivery={outcome.delivery_id or '-'} class={outcome.severity or '-'} "
        f"suppressed={outcome.suppressed or '-'} {escape(outcome.note)}"
    )


def _print_previews(rows: list[tuple[str, Preview]]) -> None:
    for where, preview in rows:
        console.print(
            f"{escape(where)}: {preview.kind} format={preview.format or '-'} "
            f"recipients={','.join(preview.recipients) or '-'} status={preview.status or '-'} "
            f"delivery={preview.delivery_id or '-'} ({escape(preview.why)})",
            soft_wrap=True,
        )
    console.print(f"{len(rows)} messages read, nothing changed (dry run)")


@bounces_app.command("unreadable")
def unreadable_command(
    raw: Annotated[
        int | None, typer.Option("--raw", help="Write the kept bytes of unreadable message ID to stdout.")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """List the messages that could not be read (kept for an operator), or print one's bytes."""
    from pipeline.feedback.bounces import list_unreadable
    from pipeline.storage.engines import connect

    settings = open_workspace(workspace).settings
    engine = connect(settings)
    try:
        rows = list_unreadable(engine)
    finally:
        engine.dispose()
    if raw is not None:
        found = next((row for row in rows if row.id == raw), None)
        if found is None:
            raise CommsError(f"no unreadable message #{raw}")
        if found.raw is None:
            raise CommsError(f"unreadable #{raw}: its bytes were not kept; it is at {found.location}")
        sys.stdout.buffer.write(found.raw)
        return
    for row in rows:
        when = f"{row.created_at:%Y-%m-%d %H:%M}" if row.created_at else "-"
        kept = "bytes kept" if row.raw is not None else "bytes not kept"
        console.print(
            f"#{row.id} {when} {escape(row.source)} {row.size} bytes ({kept}), "
            f"at {escape(row.location or '-')}: {escape(row.reason)}",
            soft_wrap=True,
        )
    console.print(f"{len(rows)} unreadable messages")


@bounces_app.command("poll")
def poll_command(workspace: WorkspaceOption = None) -> None:
    """Ingest every message in the IMAP folder of [bounces] imap_url, moving each to processed_folder.

    \b
    Example:
      comms bounces poll
    """
    from pipeline.feedback.bounces import poll_imap
    from pipeline.storage.engines import connect

    settings = open_workspace(workspace).settings
    engine = connect(settings)
    try:
        _print(poll_imap(engine, settings))
    finally:
        engine.dispose()
