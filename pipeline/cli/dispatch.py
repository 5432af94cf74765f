"""Commands for sending: `comms send` and `comms runs ...` (parse, call pipeline.runs, print)."""

from __future__ import annotations

import getpass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from pipeline.cli.common import (
    Format,
    FormatOption,
    ProcessesOption,
    WorkspaceOption,
    console,
    open_workspace,
    print_rows,
)

if TYPE_CHECKING:
    from pipeline.runs import control, dispatch, start
    from pipeline.storage.models import Run
    from pipeline.workspace.folders import Workspace

runs_app = typer.Typer(
    help="Watch and control runs: list, show, pause, resume, cancel, retry.", no_args_is_help=True
)

RunId = Annotated[int, typer.Argument(help="The run's number (see `comms runs list`).", show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.add_typer(runs_app, name="runs")


def send(
    campaign: Annotated[str, typer.Argument(help="The copy to send: templates/copy/CAMPAIGN.md.")],
    audience: Annotated[
        str | None,
        typer.Option("--audience", "-a", help="Send to audiences/NAME.toml instead of the copy's own."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render every message and report; send and record nothing.")
    ] = False,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", help="Test send to this address only ([TEST] subject, not recorded); repeatable."
        ),
    ] = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help="Send also to contacts who already received this campaign in an earlier run."
        ),
    ] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Create the run even when it has no recipients.")
    ] = False,
    processes: ProcessesOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Send CAMPAIGN to its audience: freeze it, snapshot the audience, dispatch with a progress bar.

    Exit codes: 0 finished, every delivery sent or skipped by rule; 1 error before sending;
    2 paused; 3 finished with failures (or cancelled).

    \b
    Example:
      comms send spring-launch --dry-run
    """
    from pipeline.runs import apart, control, dispatch

    ws = open_workspace(workspace)
    if to:
        _test_send(ws, campaign, to)
    elif dry_run:
        _dry_run(ws, campaign, audience, again=again, allow_empty=allow_empty)
    else:
        # Started in a process of its own, confirmation and all, its content prepared in another:
        # this one then sends, holding none of what starting needs (pipeline.runs.apart).
        started = apart.in_fresh_process(
            "pipeline.cli.dispatch:_start",
            ws.root,
            campaign,
            audience,
            yes=yes,
            again=again,
            allow_empty=allow_empty,
        )
        run = control.show_run(ws, started).run
        if yes:  # the confirmation showed them already
            _print_warnings(run.meta.get("warnings", []))
        left_out = run.meta.get("left_out", 0)
        console.print(
            f"run {run.id}: {run.recipient_count} recipients queued"
            + (
                f"; {left_out} left out who already received this campaign (--again sends to them)"
                if left_out
                else ""
            )
        )
        dispatch_in_foreground(ws, run, processes)
        _print_summary(dispatch.send_summary(ws, run))


def _start(
    root: Path, campaign: str, audience: str | None, *, yes: bool, again: bool, allow_empty: bool
) -> int:
    """In the process that starts the run (runs.apart): its content prepared in another, then the
    run started, asking first unless YES; its id."""
    from pipeline.runs import apart, start
    from pipeline.workspace.folders import Workspace

    ws = Workspace.open(root)
    prepared = apart.in_fresh_process("pipeline.runs.prepare:prepare_at", root, campaign)
    run = start.start_run(
        ws,
        prepared,
        audience,
        started_by=f"cli:{getpass.getuser()}",
        confirm=None if yes else partial(_confirm, ws),
        again=again,
        allow_empty=allow_empty,
    )
    assert run.id is not None
    return run.id


def _print_summary(summary: dispatch.SendSummary) -> None:
    """Said once, at the very end: where the messages are, and why not everyone on the lists got one."""
    console.print(f"messages went to {summary.destination}", highlight=False)
    counts = summary.breakdown
    reasons = [f"{counts.suppressed} suppressed (unsubscribed, bounced or complained)"]
    reasons.append(f"{counts.not_matching} outside the audience's conditions")
    reasons += [f"{n} skipped at send time ({why})" for why, n in sorted(summary.skipped.items())]
    console.print(
        f"{counts.on_lists} on the audience's lists, {counts.recipients} in the audience: "
        + ", ".join(reasons),
        highlight=False,
    )


def _print_warnings(warnings: list[str] | tuple[str, ...]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning[/yellow]  {warning}", highlight=False)


def _confirm(ws: Workspace, plan: start.RunPlan) -> None:
    console.print(f"campaign   {plan.campaign.name} ({plan.campaign.department})")
    console.print(f"audience   {plan.audience.name}: {plan.recipients} recipients")
    if plan.already_received:
        did = "are sent it AGAIN (--again)" if plan.again else "are left out"
        console.print(f"           {plan.already_received} of them already received this campaign and {did}")
    console.print(f"transport  {plan.transport}")
    _print_warnings(plan.campaign.warnings)
    if plan.test is not None:
        _print_test(ws, plan)
    question = (
        "Send again to people who already received it?"
        if plan.again and plan.already_received
        else "Send now?"
    )
    if not typer.confirm(question):
        console.print("nothing sent")
        raise typer.Exit(1)


def _test_send(ws: Workspace, campaign: str, to: list[str]) -> None:
    from pipeline.runs import rehearsal

    failed = False
    sent_tests, warnings = rehearsal.test_send(ws, campaign, to)
    _print_warnings(warnings)
    for sent in sent_tests:
        ok = sent.result.status == "sent"
        failed |= not ok
        mark = "[green]sent[/green]" if ok else f"[red]{sent.result.status}[/red]"
        console.print(
            f"{mark}  {sent.email} (as {sent.personalised_as}): "
            + " ".join(str(part) for part in (sent.result.code, sent.result.reply) if part is not None),
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


def _dry_run(ws: Workspace, campaign: str, audience: str | None, *, again: bool, allow_empty: bool) -> None:
    from pipeline.runs import rehearsal

    report = rehearsal.dry_run(ws, campaign, audience, again=again, allow_empty=allow_empty)
    plan = report.plan
    console.print(f"campaign   {plan.campaign.name} ({plan.campaign.department})")
    console.print(f"audience   {plan.audience.name}: {plan.recipients} recipients")
    console.print(f"transport  {plan.transport} (nothing sent: dry run)")
    console.print(f"rendered   {report.rendered} messages, {report.average_bytes // 1024} KB on average")
    _print_warnings(plan.campaign.warnings)
    _print_test(ws, plan)
    if report.sample_to:
        console.print(f"\nsample to {report.sample_to}\nSubject: {report.sample_subject}\n")
        console.print(report.sample_text or "", markup=False, highlight=False)
    if report.failed:
        console.print(f"[red]{report.failed} messages could not be built[/red]")
        for email, why in report.failures:
            console.print(f"  {email}: {why}", markup=False)
        raise typer.Exit(1)


def _print_test(ws: Workspace, plan: start.RunPlan) -> None:
    """The A/B test's sample needed against this audience (and learn-only, when it is too small)."""
    from pipeline.experiments.planning import plan_lines

    for number, line in enumerate(plan_lines(ws, plan.campaign.name, plan.recipients)):
        console.print(f"{'A/B test' if number == 0 else '':<10} {line}", highlight=False, markup=False)


class _RateColumn(ProgressColumn):
    """Messages per second over the last few updates."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.0f}/s")


def dispatch_in_foreground(ws: Workspace, run: Run, processes: int | None = None) -> None:
    """Send RUN in the foreground with a progress bar (in PROCESSES processes, default one per
    core for a run large enough to use them), then show where it ended."""
    from pipeline.delivery.processes import default_processes
    from pipeline.runs import dispatch

    assert run.id is not None
    bar = Progress(
        TextColumn("run {task.fields[run]}"),
        BarColumn(),
        TextColumn("{task.fields[sent]} sent, {task.fields[failed]} failed, {task.fields[remaining]} left"),
        _RateColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a progress bar in a log file is noise
    )
    with bar:
        task = bar.add_task("send", total=run.recipient_count, run=run.id, sent=0, failed=0, remaining="?")

        def update(progress: dispatch.RunProgress) -> None:
            done = progress.total - progress.remaining
            bar.update(
                task,
                total=progress.total,
                completed=done,
                sent=progress.sent,
                failed=progress.failed,
                remaining=progress.remaining,
            )

        report = dispatch.dispatch_run(
            ws, run.id, on_progress=update, processes=processes or default_processes(run.recipient_count)
        )
    _print_report(report)
    code = exit_code(report)
    if code:
        raise typer.Exit(code)


# `comms send` (and resume, retry) exit codes; 1 is any error before sending (see pipeline.cli.main).
EXIT_PAUSED = 2
EXIT_FAILURES = 3


def exit_code(report: control.RunReport) -> int:
    """0: finished, every delivery sent or skipped by rule; 2: paused; 3: finished with failures,
    cancelled or failed."""
    from pipeline.storage.statuses import DeliveryStatus, RunStatus

    status = report.run.status
    if status == RunStatus.paused:
        return EXIT_PAUSED
    if status == RunStatus.sending and report.waiting_for_decision:  # an A/B test's arms are out
        return 0
    if status == RunStatus.finished and not report.counts[DeliveryStatus.failed]:
        return 0
    return EXIT_FAILURES


def _print_report(report: control.RunReport) -> None:
    from pipeline.storage.statuses import DeliveryStatus, RunStatus

    run = report.run
    reason = f" ({run.status_reason})" if run.status_reason else ""
    console.print(f"run {run.id}  {run.campaign} -> {run.audience}  [bold]{run.status}[/bold]{reason}")
    console.print(
        f"started by {run.started_by or '-'} at {_when(run.started_at)}"
        f", finished {_when(run.finished_at)}, template {run.template_hash[:12]}"
    )
    if report.approval is not None:
        approval = report.approval
        console.print(
            f"approved by {approval.approver} (approval {approval.id}, {_when(approval.approved_at)}, "
            f"content {approval.content_hash[:12]})",
            highlight=False,
        )
    elif run.status != RunStatus.blocked and run.recipient_count:
        console.print("sent without an approval ([approvals] required = false)", markup=False)
    counts = report.counts
    console.print(
        "  ".join(f"{status} {counts[status]}" for status in DeliveryStatus if counts[status])
        or "no deliveries"
    )
    if report.waiting_for_decision:
        decide_at = run.ab_decide_at
        console.print(
            f"A/B test: {counts[DeliveryStatus.held]} held until the decision"
            + (f" at {_when(decide_at)} UTC (the daemon decides then)" if decide_at else "")
            + f"; `comms ab decide {run.id}` decides now"
        )
    if report.rate_per_s:
        eta = f", about {_duration(report.eta_s)} left" if report.eta_s else ""
        console.print(f"rate {report.rate_per_s:.1f} messages/s{eta}")
    if report.errors:
        console.print("last errors:")
        for error in report.errors:
            code = error.code if error.code is not None else "---"
            console.print(
                f"  {error.email} [{error.status}] {code} {error.reply}", markup=False, highlight=False
            )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@runs_app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many of the latest runs.")] = 20,
    output: FormatOption = Format.table,
    workspace: WorkspaceOption = None,
) -> None:
    """The latest runs, newest first.

    \b
    Example:
      comms runs list --format json | python -m json.tool
    """
    from pipeline.storage import listing
    from pipeline.storage.statuses import DeliveryStatus

    rows = [
        (
            run.id,
            run.campaign,
            run.audience,
            run.status,
            run.counts[DeliveryStatus.sent],
            run.recipient_count,
            run.counts[DeliveryStatus.failed],
            run.left,
            run.created_at,
        )
        for run in listing.list_runs(open_workspace(workspace), limit)
    ]
    headings = ["run", "campaign", "audience", "status", "sent", "recipients", "failed", "left", "created"]
    print_rows(headings, rows, output, right=("run", "sent", "recipients", "failed", "left"))


@runs_app.command("show")
def show(
    run_id: Annotated[
        int | None, typer.Argument(help="The run's number (default: the latest run).", show_default=False)
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Counts by status, rate, ETA, last errors and headline engagement of a run (default: the latest).

    \b
    Example:
      comms runs show 12
    """
    from pipeline.reports import run_report
    from pipeline.reports.render import pct
    from pipeline.runs import control
    from pipeline.storage.engines import opened

    ws = open_workspace(workspace)
    report = control.show_run(ws, run_id)
    _print_report(report)
    assert report.run.id is not None
    with opened(ws.settings) as engine:
        figures = run_report(engine, ws.settings, report.run.id).figures
    if figures.counts is not None:
        r = figures.rates
        console.print(
            f"delivered {figures.counts['delivered']}  human opens {pct(r['human_open_rate'])}  "
            f"human clicks {pct(r['human_click_rate'])}  unsubscribes {pct(r['unsubscribe_rate'])}  "
            f"complaints {pct(r['complaint_rate'])}  machine clicks {pct(r['machine_click_share'])}",
            highlight=False,
        )


@runs_app.command("pause")
def pause(run_id: RunId, workspace: WorkspaceOption = None) -> None:
    """Stop sending a run; the messages in flight finish. `comms runs resume` continues it.

    \b
    Example:
      comms runs pause 12
    """
    from pipeline.runs import control

    run = control.pause_run(open_workspace(workspace), run_id)
    console.print(f"run {run.id} paused")


@runs_app.command("resume")
def resume(run_id: RunId, processes: ProcessesOption = None, workspace: WorkspaceOption = None) -> None:
    """Continue a paused (or interrupted) run here, with a progress bar.

    \b
    Example:
      comms runs resume 12
    """
    from pipeline.runs import control

    ws = open_workspace(workspace)
    dispatch_in_foreground(ws, control.resume_run(ws, run_id), processes)


@runs_app.command("cancel")
def cancel(run_id: RunId, workspace: WorkspaceOption = None) -> None:
    """Stop a run for good; nothing more of it is sent.

    \b
    Example:
      comms runs cancel 12
    """
    from pipeline.runs import control

    run = control.cancel_run(open_workspace(workspace), run_id)
    console.print(f"run {run.id} cancelled")


@runs_app.command("retry")
def retry(run_id: RunId, processes: ProcessesOption = None, workspace: WorkspaceOption = None) -> None:
    """Queue again the failed deliveries that may succeed now, and send them here.

    \b
    Example:
      comms runs retry 12
    """
    from pipeline.runs import control

    ws = open_workspace(workspace)
    count = control.retry_run(ws, run_id)
    console.print(f"run {run_id}: {count} failed deliveries queued again")
    if count:
        dispatch_in_foreground(ws, control.show_run(ws, run_id).run, processes)
