"""`comms demo seed-history`: parse, call pipeline.demo.history, print what was written."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.common import WorkspaceOption, console, open_workspace

demo_app = typer.Typer(
    help="Demo data for the sample workspace (clearly marked, removable).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")


@demo_app.command("seed-history")
def seed_history(
    until: Annotated[
        str, typer.Option("--until", help="The last period of history (2027-Q1, 2027-03).")
    ] = "2027-Q1",
    periods: Annotated[int, typer.Option(min=1, max=24, help="How many periods, ending with --until.")] = 6,
    remove: Annotated[bool, typer.Option("--remove", help="Delete the demo history instead.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """DEMO DATA: synthetic runs, deliveries and events (contacts at demo.example, runs started by
    demo:seed-history) so that `comms report exec` has a history to show. The exec report footnotes
    it; --remove deletes all of it.

    \\b
    Example:
      comms demo seed-history --until 2027-Q1 && comms report exec --period 2027-Q1
    """
    from pipeline.demo.history import remove_history
    from pipeline.demo.history import seed_history as seed
    from pipeline.reports import parse_period
    from pipeline.storage.engines import opened
    from pipeline.storage.models import utcnow

    ws = open_workspace(workspace)
    with opened(ws.settings) as engine:
        if remove:
            console.print(
                f"removed {remove_history(engine)} demo runs and the demo contacts", highlight=False
            )
            return
        done = seed(engine, parse_period(until, utcnow()), periods=periods)
    console.print(
        f"DEMO DATA written for {done.periods[0]} to {done.periods[-1]}: {done.contacts} contacts, "
        f"{done.runs} runs, {done.deliveries} deliveries, {done.events} events",
        highlight=False,
    )
