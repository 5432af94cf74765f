"""Starting a run, second half: the audience, the approval and the other gates, freeze, snapshot.

A run freezes its campaign (the recipient-scope templates, their hash, the tracked link list) and its
audience (one delivery row per recipient) when it starts, so a run resumed days later sends what was
approved, to whom it was approved for. pipeline.runs.prepare makes the campaign's half (Prepared)
without the database, and this module takes it from there: the process that sends can start its
run itself, holding none of assembly's libraries. The CLI (`comms send`) and the daemon only call
this; pipeline.runs.dispatch sends the run.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pipeline.approvals.content import Content
from pipeline.approvals.ledger import verdict
from pipeline.assembly.campaign import Campaign
from pipeline.assembly.variants import AbTest
from pipeline.audience.segments import (
    Audience,
    audience_query,
    count_audience,
    load_audience,
    snapshot_query,
    stream_people,
)
from pipeline.checks.variables import missing_variables
from pipeline.errors import (
    AudienceError,
    RunBlocked,
    RunError,
    TemplateError,
)
from pipeline.runs.assignment import assign
from pipeline.runs.control import describe_transport, get_run
from pipeline.runs.prepare import Prepared, prepare_run
from pipeline.storage import outbox
from pipeline.storage.engines import opened, session
from pipeline.storage.models import Approval, Run, utcnow
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

log = logging.getLogger("comms.runs")


# -- starting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """What a run would send, to whom and how: shown before anything is written."""

    campaign: Campaign
    audience: Audience
    recipients: int  # who the run would send to (without those left out)
    transport: str
    already_received: int = 0  # contacts of the audience who got this campaign in an earlier run
    again: bool = False  # True: they are sent it again; False: they are left out
    test: AbTest | None = None  # the copy's A/B test
    variants: tuple[Campaign, ...] = ()  # with a test: every variant assembled, the control first

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        """Every message the run would send: each variant's, or the one campaign's."""
        return self.variants or (self.campaign,)


def plan_run(
    ws: Workspace, prepared: Prepared, audience: str | None = None, *, again: bool = False
) -> RunPlan:
    """The PREPARED campaign to its audience (the copy's own unless AUDIENCE is given), counted."""
    assembled = prepared.campaign
    chosen = load_audience(ws, audience or assembled.audience)
    with opened(ws.settings) as engine, session(engine) as db:
        count = count_audience(db, chosen)
        already = outbox.count_already_received(db.connection(), audience_query(chosen), assembled.name)
    recipients = count if again else count - already
    transport = describe_transport(ws.settings)
    return RunPlan(assembled, chosen, recipients, transport, already, again, prepared.test, prepared.variants)


class UnfinishedRunError(RunError):
    """The campaign already has a run to this audience that is not finished: resume or cancel it."""


class OccurrenceTaken(RunError):
    """A schedule's occurrence already has its run (it runs once, however often it is triggered)."""


def check_before_run(ws: Workspace, plan: RunPlan, settings: Settings, *, allow_empty: bool = False) -> None:
    """The gates a run must pass before it is created, so a run that cannot go well is never made.

    Each raises a one-line CommsError. Gates of other kinds (approvals) go beside these, in the same
    place: start_run and dry_run call this before anything is written, after the content's gates
    (pipeline.runs.prepare). SETTINGS are the workspace's (a dry run's carry a preview secret when
    COMMS_SECRET is unset).
    """
    with opened(ws.settings) as engine, engine.connect() as conn:
        unfinished = outbox.unfinished_runs(conn, plan.campaign.name, plan.audience.name)
    if unfinished:
        run = unfinished[0]
        raise UnfinishedRunError(
            f"campaign {plan.campaign.name} already has run {run.id} to {plan.audience.name}, which is "
            f"{run.status}: resume it with `comms runs resume {run.id}` (or cancel it with "
            f"`comms runs cancel {run.id}`) instead of starting another"
        )
    if plan.recipients == 0 and not allow_empty:
        left_out = f" (all {plan.already_received} already received it; --again sends again)"
        raise AudienceError(
            f"audience {plan.audience.name} has no one to send to"
            f"{left_out if plan.already_received else ''}; --allow-empty creates the run anyway",
            path=plan.audience.path,
        )
    check_variables(ws, plan)


def check_variables(ws: Workspace, plan: RunPlan) -> None:
    """Refuse a run in which some recipients would get an empty value where the copy prints one."""
    with opened(ws.settings) as engine, session(engine) as db:
        found = [
            missing
            for campaign in plan.campaigns
            for missing in missing_variables(campaign, stream_people(db, plan.audience))
        ]
    if found:
        first = found[0]
        more = f" (and {len(found) - 1} more variables)" if len(found) > 1 else ""
        raise TemplateError(first.message + more, path=first.path, line=first.line)


def start_run(
    ws: Workspace,
    campaign: str | Prepared,
    audience: str | None = None,
    *,
    started_by: str,
    schedule: str | None = None,
    occurrence: datetime | None = None,
    confirm: Callable[[RunPlan], None] | None = None,
    meta: Mapping[str, Any] | None = None,
    paused_reason: str | None = None,
    again: bool = False,
    allow_empty: bool = False,
) -> Run:
    """Freeze CAMPAIGN and snapshot its audience into a new run that is ready to send (status sending).

    CAMPAIGN is a name, prepared here, or what pipeline.runs.prepare made of it elsewhere.
    CONFIRM sees the plan before anything is written and aborts by raising. A run for
    a (SCHEDULE, OCCURRENCE) that already has one is refused with OccurrenceTaken, so a
    scheduled occurrence runs once however often it is triggered. META is kept with
    the run (the daemon keeps a schedule's sending window there); with PAUSED_REASON
    the run starts paused instead, before any worker can claim from it. Contacts who
    got this campaign in an earlier run are left out, unless AGAIN; check_before_run
    refuses an empty run unless ALLOW_EMPTY. The campaign's warnings are kept in meta.
    """
    prepared = prepare_run(ws, campaign) if isinstance(campaign, str) else campaign
    plan = plan_run(ws, prepared, audience, again=again)
    approval = gate_run_start(
        ws, plan, prepared.content, started_by=started_by, schedule=schedule, occurrence=occurrence
    )
    check_before_run(ws, plan, ws.settings, allow_empty=allow_empty)
    if confirm is not None:
        confirm(plan)
    tracked, tracked_html = prepared.tracked, prepared.tracked_html
    now = utcnow()
    run = Run(
        campaign=tracked.name,
        department=tracked.department,
        audience=plan.audience.name,
        started_by=started_by,
        schedule=schedule,
        occurrence=occurrence,
        template_hash=tracked.template_hash,
        subject_template=tracked.subject,
        html_template=tracked.html,
        text_template=tracked.text,
        approval_id=approval.id if approval else None,
        meta={
            **(meta or {}),
            "links": list(tracked_html.links),
            "honeypot": tracked_html.honeypot,
            "tracking": tracked.tracking,
            "cta_link": prepared.cta_link,
            "layout": tracked.layout,
            "transport": plan.transport,
            "message_id_salt": secrets.token_hex(16),
            "warnings": list(tracked.warnings),
            "left_out": 0 if again else plan.already_received,
            **({"ab": prepared.ab} if prepared.ab else {}),
        },
        created_at=now,
        ab_decide_at=now + plan.test.test.decide_after if plan.test else None,
    )
    with opened(ws.settings) as engine:
        try:
            with engine.begin() as conn:
                run_id = outbox.create_run(conn, run)
                frozen = snapshot_query(plan.audience, ws.settings.reports)
                if not again:  # leave out whoever got (or is queued for) this campaign already
                    frozen = frozen.where(~outbox.has_received(tracked.name))
                count = outbox.snapshot_audience(conn, run_id, frozen, now)
                if plan.test is not None:  # in the same transaction: no delivery is ever without its variant
                    test = plan.test
                    share = None if test.test.learn_only else float(test.test.share)
                    assigned = assign(outbox.strata(conn, run_id), run_id, test.variants, share)
                    outbox.assign_variants(conn, assigned)
                outbox.set_recipient_count(conn, run_id, count)
                status = RunStatus.sending if paused_reason is None else RunStatus.paused
                reason = paused_reason or ""
                outbox.set_run_status(conn, run_id, status, when=[RunStatus.planned], now=now, reason=reason)
        except IntegrityError:
            if schedule is None:
                raise
            raise OccurrenceTaken(f"schedule {schedule} already has a run for {occurrence}") from None
        return get_run(engine, run_id)


def gate_run_start(
    ws: Workspace,
    plan: RunPlan,
    content: Content | None,
    *,
    started_by: str,
    schedule: str | None = None,
    occurrence: datetime | None = None,
) -> Approval | None:
    """The approval a run goes under, of CONTENT (runs.prepare's hash of it), before anything is queued.

    Refused (no valid approval of exactly this content, when `[approvals] required`): the run is
    recorded as blocked with the reason, and RunBlocked says it in one line with the command that
    fixes it. The content's own gates (checks, rendering, the sender) came before, in runs.prepare.
    """
    if not ws.settings.approvals.required:
        return None
    with opened(ws.settings) as engine:
        with engine.begin() as conn:
            found = verdict(ws, conn, plan.campaign.name, plan.audience.name, content=content)
        if found.approval is not None:
            return found.approval
        _record_blocked(engine, plan, found.reason, started_by, schedule, occurrence, found.content.hash)
    raise RunBlocked(f"not sent: {found.reason}")


def _record_blocked(
    engine: Engine,
    plan: RunPlan,
    reason: str,
    started_by: str,
    schedule: str | None,
    occurrence: datetime | None,
    content_hash: str,
) -> None:
    now = utcnow()
    run = Run(
        campaign=plan.campaign.name,
        department=plan.campaign.department,
        audience=plan.audience.name,
        status=RunStatus.blocked,
        started_by=started_by,
        schedule=schedule,
        occurrence=occurrence,
        template_hash=plan.campaign.template_hash,
        meta={"content_hash": content_hash},
        status_reason=reason[:1000],
        created_at=now,
        finished_at=now,
    )
    try:
        with engine.begin() as conn:
            outbox.create_run(conn, run)
    except IntegrityError:
        if schedule is None:
            raise
        # this occurrence is already recorded (blocked before, or run): once is enough
