"""Runs as the operator sees them: start, dry-run, test-send, dispatch, show, pause, resume, cancel, retry.

The library face of `comms send` and `comms runs`; the CLI only parses and prints.
A run freezes its campaign (the recipient-scope templates, their hash, the tracked
link list) and its audience (one delivery row per recipient) when it starts, so a
run resumed days later sends what was approved, to whom it was approved for.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pipeline.approvals.ledger import verdict
from pipeline.assembly.campaign import Campaign, assemble, check_campaign
from pipeline.assembly.personalize import preview_recipient
from pipeline.assembly.tracking import track_campaign
from pipeline.audience.contacts import find_contact
from pipeline.audience.segments import (
    Audience,
    audience_query,
    count_audience,
    load_audience,
    stream_audience,
)
from pipeline.delivery.engine import Tally, run_worker
from pipeline.delivery.transports import transport_for
from pipeline.delivery.verdicts import is_retryable
from pipeline.errors import RunBlocked, RunError
from pipeline.message.compose import Composer
from pipeline.message.dkim import Signer
from pipeline.runs.preview import PREVIEW_SECRET
from pipeline.storage import approvals, outbox
from pipeline.storage.engines import opened, session
from pipeline.storage.models import Approval, DeliveryStatus, Run, RunStatus, utcnow
from pipeline.types import Outgoing, Recipient, SendResult
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

_DONE = (DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.skipped, DeliveryStatus.cancelled)
_RATE_WINDOW = timedelta(seconds=60)


log = logging.getLogger("comms.runs")


def describe_transport(settings: Settings) -> str:
    """Where messages go, in words for a confirmation prompt (no password: there is none in the URL)."""
    config = settings.transport
    if config.kind == "smtp":
        url = urlsplit(config.url or "")
        where = f"{url.hostname}:{url.port or 'default port'}"
        return f"smtp {where} ({config.security}, {config.connections} connections)"
    if config.kind == "file":
        return f"file: .eml files in {config.path}/"
    return "console"


# -- starting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """What a run would send, to whom and how: shown before anything is written."""

    campaign: Campaign
    audience: Audience
    recipients: int
    transport: str


def plan_run(ws: Workspace, campaign: str, audience: str | None = None) -> RunPlan:
    """Assemble and check CAMPAIGN and count its audience (the copy's own unless AUDIENCE is given)."""
    assembled = assemble(ws, campaign)
    check_campaign(ws, assembled)
    chosen = load_audience(ws, audience or assembled.audience)
    with opened(ws.settings) as engine, session(engine) as db:
        count = count_audience(db, chosen)
    return RunPlan(assembled, chosen, count, describe_transport(ws.settings))


def start_run(
    ws: Workspace,
    campaign: str,
    audience: str | None = None,
    *,
    started_by: str,
    schedule: str | None = None,
    occurrence: datetime | None = None,
    confirm: Callable[[RunPlan], None] | None = None,
    meta: Mapping[str, Any] | None = None,
    paused_reason: str | None = None,
) -> Run:
    """Freeze CAMPAIGN and snapshot its audience into a new run that is ready to send (status sending).

    CONFIRM sees the plan before anything is written and aborts by raising. A run for
    a (SCHEDULE, OCCURRENCE) that already has one is refused with RunError, so a
    scheduled occurrence runs once however often it is triggered. META is kept with
    the run (the daemon keeps a schedule's sending window there); with PAUSED_REASON
    the run starts paused instead, before any worker can claim from it.
    """
    ws.settings.secret  # noqa: B018 -- refuse now rather than after the snapshot: links need COMMS_SECRET
    plan = plan_run(ws, campaign, audience)
    approval = gate_run_start(ws, plan, started_by=started_by, schedule=schedule, occurrence=occurrence)
    if confirm is not None:
        confirm(plan)
    tracked, links = track_campaign(plan.campaign, ws.settings)
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
            "links": list(links),
            "layout": tracked.layout,
            "transport": plan.transport,
            "message_id_salt": secrets.token_hex(16),
        },
        created_at=now,
    )
    with opened(ws.settings) as engine:
        try:
            with engine.begin() as conn:
                run_id = outbox.create_run(conn, run)
                count = outbox.snapshot_audience(conn, run_id, audience_query(plan.audience), now)
                outbox.set_recipient_count(conn, run_id, count)
                status = RunStatus.sending if paused_reason is None else RunStatus.paused
                reason = paused_reason or ""
                outbox.set_run_status(conn, run_id, status, when=[RunStatus.planned], now=now, reason=reason)
        except IntegrityError:
            if schedule is None:
                raise
            raise RunError(f"schedule {schedule} already has a run for {occurrence}") from None
        return _get(engine, run_id)


def gate_run_start(
    ws: Workspace,
    plan: RunPlan,
    *,
    started_by: str,
    schedule: str | None = None,
    occurrence: datetime | None = None,
) -> Approval | None:
    """The gates every run passes before anything is queued; returns the approval it goes under.

    Refused (no valid approval of exactly this content, when `[approvals] required`): the run is
    recorded as blocked with the reason, and RunBlocked says it in one line with the command that
    fixes it. Other gates (checks, validation) belong here too, so no path to sending skips them.
    """
    if not ws.settings.approvals.required:
        return None
    with opened(ws.settings) as engine:
        with engine.begin() as conn:
            found = verdict(ws, conn, plan.campaign.name, plan.audience.name, assembled=plan.campaign)
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


def _get(engine: Engine, run_id: int) -> Run:
    with engine.connect() as conn:
        run = outbox.get_run(conn, run_id)
    if run is None:
        raise RunError(f"no run {run_id}")
    return run


# -- dispatching -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A run's position while this process sends it (what the progress bar shows)."""

    total: int
    sent: int
    failed: int
    skipped: int
    retrying: int  # deliveries waiting for a retry
    remaining: int


def dispatch_run(
    ws: Workspace, run_id: int, *, on_progress: Callable[[Progress], None] | None = None
) -> RunReport:
    """Send RUN_ID from this process until it finishes, pauses or is cancelled.

    SIGTERM or Ctrl-C (when called from the main thread) stops claiming, lets the
    messages in flight finish and pauses the run, to be resumed with resume_run.
    """
    with opened(ws.settings) as engine:
        run = _get(engine, run_id)
        if run.status != RunStatus.sending:
            raise RunError(f"run {run_id} is {run.status}, not sending: resume it first")
        with engine.connect() as conn:
            before = outbox.run_counts(conn, run_id)

        def progress(tally: Tally) -> None:
            if on_progress is None:
                return
            done = tally.by_run.get(run_id, {})
            sent = before[DeliveryStatus.sent] + done.get("sent", 0)
            failed = before[DeliveryStatus.failed] + done.get("failed", 0)
            skipped = before[DeliveryStatus.skipped] + done.get("skipped", 0)
            total = sum(before.values())
            finished = sent + failed + skipped + before[DeliveryStatus.cancelled]
            on_progress(Progress(total, sent, failed, skipped, done.get("retried", 0), total - finished))

        stopped = asyncio.run(_dispatch(ws, engine, run_id, progress))
        if stopped:
            with engine.begin() as conn:
                outbox.set_run_status(
                    conn,
                    run_id,
                    RunStatus.paused,
                    when=[RunStatus.sending],
                    now=utcnow(),
                    reason="stopped by a signal; resume to continue",
                )
    return show_run(ws, run_id)


async def _dispatch(ws: Workspace, engine: Engine, run_id: int, progress: Callable[[Tally], None]) -> bool:
    """Run one worker on RUN_ID; True if a signal stopped it before the run was done."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = threading.current_thread() is threading.main_thread()
    if handled:

        def on_signal() -> None:
            log.warning("run %s: stopping on a signal, finishing the messages in flight", run_id)
            stop.set()
            # A second Ctrl-C interrupts at once instead of waiting for the messages in flight.
            loop.remove_signal_handler(signal.SIGINT)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
    try:
        async with transport_for(ws.settings, ws.root) as transport:
            report = await run_worker(ws, engine, transport, run_id=run_id, stop=stop, on_progress=progress)
    finally:
        if handled:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    return report.stopped


# -- looking at runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    run: Run
    counts: dict[str, int]
    rate_per_s: float | None  # recent sending rate (last minute while sending, else the average)
    eta_s: float | None
    errors: list[outbox.DeliveryError] = field(default_factory=list)
    approval: Approval | None = None  # the approval it was started under

    @property
    def remaining(self) -> int:
        return self.counts[DeliveryStatus.queued] + self.counts[DeliveryStatus.sending]


def list_runs(ws: Workspace, limit: int = 20) -> list[tuple[Run, dict[str, int]]]:
    """The latest runs, newest first, each with its deliveries counted by status."""
    with opened(ws.settings) as engine, engine.connect() as conn:
        return [(run, outbox.run_counts(conn, run.id or 0)) for run in outbox.list_runs(conn, limit)]


def show_run(ws: Workspace, run_id: int | None = None, *, errors: int = 5) -> RunReport:
    """RUN_ID's report; without one, the latest run's (what an operator wants after `comms send`)."""
    with opened(ws.settings) as engine, engine.connect() as conn:
        if run_id is None:
            latest = outbox.list_runs(conn, 1)
            if not latest:
                raise RunError("no runs yet: start one with `comms send CAMPAIGN`")
            run_id = latest[0].id or 0
        run = outbox.get_run(conn, run_id)
        if run is None:
            raise RunError(f"no run {run_id}")
        counts = outbox.run_counts(conn, run_id)
        now = utcnow()
        rate = None
        if run.status == RunStatus.sending:
            recent = outbox.sent_between(conn, run_id, now - _RATE_WINDOW, now)
            rate = recent / _RATE_WINDOW.total_seconds() if recent else None
        if rate is None and (span := outbox.sending_span(conn, run_id)):
            seconds = (span[1] - span[0]).total_seconds()
            rate = counts[DeliveryStatus.sent] / seconds if seconds > 0 else None
        remaining = counts[DeliveryStatus.queued] + counts[DeliveryStatus.sending]
        eta = remaining / rate if rate and remaining and run.status == RunStatus.sending else None
        approval = approvals.get_approval(conn, run.approval_id) if run.approval_id else None
        return RunReport(run, counts, rate, eta, outbox.last_errors(conn, run_id, errors), approval)


# -- run control -----------------------------------------------------------------------------------


def _move(ws: Workspace, run_id: int, to: RunStatus, when: Sequence[RunStatus], reason: str = "") -> Run:
    with opened(ws.settings) as engine:
        run = _get(engine, run_id)
        with engine.begin() as conn:
            if not outbox.set_run_status(conn, run_id, to, when=when, now=utcnow(), reason=reason):
                raise RunError(f"run {run_id} is {run.status}: it cannot be made {to}")
            if to is RunStatus.cancelled:
                outbox.cancel_deliveries(conn, run_id, utcnow())
            if to is RunStatus.sending:
                outbox.make_due_now(conn, run_id, utcnow())
        return _get(engine, run_id)


def pause_run(ws: Workspace, run_id: int, reason: str = "paused by the operator") -> Run:
    """Stop sending RUN_ID: workers finish the messages in flight and claim no more."""
    return _move(ws, run_id, RunStatus.paused, [RunStatus.sending], reason)


def resume_run(ws: Workspace, run_id: int) -> Run:
    """Make RUN_ID sendable again, retries due now. A run left `sending` by a killed process resumes too."""
    return _move(ws, run_id, RunStatus.sending, [RunStatus.paused, RunStatus.sending])


def cancel_run(ws: Workspace, run_id: int) -> Run:
    """Stop RUN_ID for good; whatever was not sent is marked cancelled."""
    return _move(ws, run_id, RunStatus.cancelled, [RunStatus.planned, RunStatus.sending, RunStatus.paused])


def retry_run(ws: Workspace, run_id: int) -> int:
    """Queue again the failed deliveries that can succeed on another try (see retry.is_retryable)
    and make the run sendable; returns how many. Hard bounces and other refusals stay failed."""
    with opened(ws.settings) as engine:
        run = _get(engine, run_id)
        if run.status == RunStatus.cancelled:
            raise RunError(f"run {run_id} was cancelled")
        now = utcnow()
        with engine.begin() as conn:
            ids = [
                i for i, code, reply in outbox.failed_deliveries(conn, run_id) if is_retryable(code, reply)
            ]
            if ids:
                outbox.requeue(conn, ids, now)
                when = [RunStatus.finished, RunStatus.paused, RunStatus.sending, RunStatus.failed]
                outbox.set_run_status(conn, run_id, RunStatus.sending, when=when, now=now)
        return len(ids)


# -- rehearsals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunReport:
    plan: RunPlan
    rendered: int
    failures: list[tuple[str, str]]  # (email, why), the first few
    failed: int
    sample_to: str | None
    sample_subject: str | None
    sample_text: str | None
    average_bytes: int


_MAX_REPORTED_FAILURES = 20


def dry_run(ws: Workspace, campaign: str, audience: str | None = None) -> DryRunReport:
    """Everything a run does except write it and transmit: every message of the audience is rendered
    and built, failures are reported, nothing is recorded."""
    settings = ws.settings
    if not settings.secrets:
        settings = settings.model_copy(update={"secrets": [PREVIEW_SECRET]})
    plan = plan_run(ws, campaign, audience)
    tracked, _ = track_campaign(plan.campaign, settings)
    composer = Composer(settings, tracked.templates, campaign=tracked.name, department=tracked.department)
    rendered = failed = total_bytes = 0
    failures: list[tuple[str, str]] = []
    sample: tuple[str, str, str] | None = None
    with opened(ws.settings) as engine, session(engine) as db:
        for contact in stream_audience(db, plan.audience):
            try:
                recipient = Recipient.of(contact)
                composed = composer.compose(recipient, delivery_id=None, contact_key=contact.id or 0)
            except Exception as exc:  # as in dispatch: one contact's failure is reported, not fatal
                failed += 1
                if len(failures) < _MAX_REPORTED_FAILURES:
                    failures.append((contact.email, str(exc)))
                continue
            rendered += 1
            total_bytes += len(composed.outgoing.data)
            if sample is None:
                sample = (contact.email, composed.rendered.subject, composed.rendered.text)
    return DryRunReport(
        plan=plan,
        rendered=rendered,
        failures=failures,
        failed=failed,
        sample_to=sample[0] if sample else None,
        sample_subject=sample[1] if sample else None,
        sample_text=sample[2] if sample else None,
        average_bytes=total_bytes // rendered if rendered else 0,
    )


@dataclass(frozen=True)
class TestSent:
    email: str
    personalised_as: str  # "contact" (the stored contact with that address) or "preview"
    result: SendResult


def test_send(ws: Workspace, campaign: str, to: Sequence[str]) -> list[TestSent]:
    """Send CAMPAIGN to the addresses TO only, "[TEST]" before the subject, recorded nowhere.

    Each address gets the message its stored contact would get, or the [preview]
    sample's when it is not a contact, so a reviewer sees real personalisation.
    """
    settings = ws.settings
    assembled = assemble(ws, campaign)
    check_campaign(ws, assembled)
    # Untracked: a test message belongs to no delivery, so tracked links in it would lead nowhere.
    composer = Composer(
        settings,
        assembled.templates,
        campaign=assembled.name,
        department=assembled.department,
        signer=Signer.from_settings(settings, ws.root),
        tracked=False,
    )
    messages = []
    with opened(ws.settings) as engine, session(engine) as db:
        for address in to:
            contact = find_contact(db, address)
            recipient: Recipient = Recipient.of(contact) if contact else preview_recipient(settings)
            outgoing = composer.compose(
                recipient, delivery_id=None, contact_key=f"test-{uuid.uuid4()}", to_email=address, test=True
            ).outgoing
            messages.append((address, "contact" if contact else "preview", outgoing))
    return asyncio.run(_send_tests(ws, messages))


async def _send_tests(ws: Workspace, messages: list[tuple[str, str, Outgoing]]) -> list[TestSent]:
    async with transport_for(ws.settings, ws.root) as transport:
        return [
            TestSent(address, kind, await transport.send(outgoing)) for address, kind, outgoing in messages
        ]


# Not tests, whatever pytest makes of their names when a test module imports them.
test_send.__test__ = False  # type: ignore[attr-defined]
TestSent.__test__ = False  # type: ignore[attr-defined]
