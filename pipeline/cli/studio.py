"""`comms studio`: the local web page for previewing, checking and reading results (pipeline.studio)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipeline.cli.common import WorkspaceOption, open_workspace

DEFAULT_PORT = 8030


def register(app: typer.Typer) -> None:
    app.command("studio")(studio_command)


def studio_command(
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = DEFAULT_PORT,
    host: Annotated[
        str | None,
        typer.Option(help="Listen on this address instead of 127.0.0.1; needs COMMS_STUDIO_TOKEN."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Preview campaigns for any contact as you edit them, run the checks, test send, read results.

    Listens on 127.0.0.1 only. With --host and COMMS_STUDIO_TOKEN set, it listens there and
    every request must carry the token (open the page once with ?token=...).

    \b
    Example:
      comms studio --port 8030
    """
    from pipeline.studio.access import TOKEN_ENV, listen_host
    from pipeline.studio.app import create_app
    from pipeline.studio.serving import StudioServer

    ws = open_workspace(workspace)
    token = os.environ.get(TOKEN_ENV) or None
    chosen = listen_host(host, token)
    ws.settings  # noqa: B018 -- a broken comms.toml is refused now, as one line, not on the first page
    StudioServer(create_app(ws.root, token=token), host=chosen, port=port).run()
