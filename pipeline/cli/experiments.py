"""`comms ab`: decide a run's A/B test now (by the rule, or by hand with a reason) and send the rest."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.common import WorkspaceOption, console, open_workspace

ab_app = typer.Typer(
    help="A/B tests: decide a run's test and send the winner to the rest.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(ab_app, name="ab")


@ab_app.command("decide")
def decide(
    run_id: Annotated[int, typer.Argument(help="The run whose test to decide.", show_default=False)],
    winner: Annotated[
        str | None, typer.Option("--winner", help="Override the rule: send this variant to the rest.")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (required with --winner; kept and logged)."),
    ] = None,
    send: Annotated[
        bool, typer.Option("--send/--no-send", help="Send the rest here, with a progress bar (default).")
    ] = True,
    workspace: WorkspaceOption = None,
) -> None:
    """Decide RUN's A/B test now: each arm's figures, P(best), expected loss, the rule; the rest of the
    audience is released with the winner (or the control) and sent, and reports/ab-log.md gets a line.

    \b
    Example:
      comms ab decide 12
      comms ab decide 12 --winner question --reason "brand review prefers it; figures tied"
    """
    from pipeline.cli.dispatch import dispatch_in_foreground
    from pipeline.experiments.decision import decide as decide_test
    from pipeline.experiments.learning import log_line
    from pipeline.reports.ab import ab_view, shown_decision
    from pipeline.reports.render import ab_lines
    from pipeline.runs.control import show_run
    from pipeline.storage.engines import opened
    from pipeline.storage.statuses import RunStatus

    if winner is not None and not (reason or "").strip():
        raise typer.BadParameter("a manual decision needs --reason", param_hint="--reason")
    ws = open_workspace(workspace)
    with opened(ws.settings) as engine:
        decision = decide_test(ws, engine, run_id, winner=winner, reason=reason)
    run = show_run(ws, run_id).run
    for line in ab_lines(ab_view(run, ws.settings) or {}):
        console.print(line, highlight=False, markup=False)
    logged = log_line(shown_decision(decision, ws.settings))
    console.print(f"logged in reports/ab-log.md: {logged}", highlight=False, markup=False)
    if send and decision["released"] and run.status == RunStatus.sending:
        dispatch_in_foreground(ws, run)
