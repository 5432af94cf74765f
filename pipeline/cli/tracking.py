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
from pipeline.errors import DatabaseError

if TYPE_CHECKING:
    from pipeline.feedback.bounces import Outcome

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
    """Run the tracking server: opens, clicks, unsubscribe, view online, preferences, webhooks."""
    from pipeline.feedback.server import create_app
    from pipeline.feedback.serving import StoppingServer, tracking_config
    from pipeline.storage.engines import connect
    from pipeline.workspace.settings import shown_url

    settings = open_workspace(workspace).settings
    listen_host, _, listen_port = (settings.tracking.listen or DEFAULT_LISTEN).rpartition(":")
    engine = connect(settings)
    app = create_app(settings, engine)
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


def _print(outcomes: list[Outcome]) -> None:
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
    source: Annotated[
        str,
        typer.Argument(help="A message file, an mbox file, a Maildir folder, or - for one message on stdin."),
    ] = "-",
    workspace: WorkspaceOption = None,
) -> None:
    """Read bounce and complaint reports and apply them (suppressions, events, failed deliveries).

    With - it reads one message on stdin: use it as an MTA pipe target for the bounce address.
    If the database is unreachable it exits 75 (EX_TEMPFAIL) so the MTA keeps the message.
    """
    from pipeline.feedback.bounces import ingest_message, ingest_path
    from pipeline.storage.engines import connect

    settings = open_workspace(workspace).settings
    if source != "-":
        engine = connect(settings)
        try:
            _print(ingest_path(engine, settings, Path(source)))
        finally:
            engine.dispose()
        return
    raw = sys.stdin.buffer.read()
    try:
        engine = connect(settings)
        try:
            outcome = ingest_message(engine, settings, raw, source="stdin")
        finally:
            engine.dispose()
    except DatabaseError as exc:
        err_console.print(f"comms: error: {escape(str(exc))} (the MTA should retry later)")
        raise typer.Exit(EX_TEMPFAIL) from None
    console.print(
        f"{outcome.kind} delivery={outcome.delivery_id or '-'} class={outcome.severity or '-'} "
        f"suppressed={outcome.suppressed or '-'} {escape(outcome.note)}"
    )


@bounces_app.command("poll")
def poll_command(workspace: WorkspaceOption = None) -> None:
    """Ingest every message in the IMAP folder of [bounces] imap_url, moving each to processed_folder."""
    from pipeline.feedback.bounces import poll_imap
    from pipeline.storage.engines import connect

    settings = open_workspace(workspace).settings
    engine = connect(settings)
    try:
        _print(poll_imap(engine, settings))
    finally:
        engine.dispose()
