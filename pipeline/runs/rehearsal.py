"""Rehearsals: a dry run renders every message of the audience and records nothing; a test send
goes to the given addresses only, "[TEST]" in the subject, untracked and never a delivery.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.assembly.campaign import assemble, check_campaign
from pipeline.assembly.personalize import preview_recipient
from pipeline.audience.contacts import find_contact
from pipeline.audience.segments import (
    stream_audience,
)
from pipeline.delivery.transports import transport_for
from pipeline.message.compose import Composer
from pipeline.message.dkim import Signer
from pipeline.runs.prepare import check_sender, prepare_run, refuse_failing_checks
from pipeline.runs.preview import preview_settings
from pipeline.runs.start import RunPlan, check_before_run, plan_run
from pipeline.storage.engines import opened, session
from pipeline.types import Outgoing, Recipient, SendResult
from pipeline.workspace.folders import Workspace

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


def dry_run(
    ws: Workspace,
    campaign: str,
    audience: str | None = None,
    *,
    again: bool = False,
    allow_empty: bool = False,
) -> DryRunReport:
    """Everything a run does except write it and transmit: the content's gates and the run's
    (check_before_run), then every message of the audience is rendered and built, failures are
    reported, nothing is recorded."""
    settings = preview_settings(ws)
    prepared = prepare_run(ws, campaign, settings)
    plan = plan_run(ws, prepared, audience, again=again)
    check_before_run(ws, plan, settings, allow_empty=allow_empty)
    tracked = prepared.tracked
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


def test_send(ws: Workspace, campaign: str, to: Sequence[str]) -> tuple[list[TestSent], tuple[str, ...]]:
    """Send CAMPAIGN to the addresses TO only, "[TEST]" before the subject, recorded nowhere.

    Each address gets the message its stored contact would get, or the [preview]
    sample's when it is not a contact, so a reviewer sees real personalisation.
    Returns what was sent, and the campaign's warnings (as preview shows them).
    """
    settings = ws.settings
    check_sender(settings, ws)
    assembled = assemble(ws, campaign)
    check_campaign(ws, assembled)
    refuse_failing_checks(ws, assembled)  # a test send is no run, so it has no approval to pass
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
    return asyncio.run(_send_tests(ws, messages)), assembled.warnings


async def _send_tests(ws: Workspace, messages: list[tuple[str, str, Outgoing]]) -> list[TestSent]:
    async with transport_for(ws.settings, ws.root) as transport:
        return [
            TestSent(address, kind, await transport.send(outgoing)) for address, kind, outgoing in messages
        ]


# Not tests, whatever pytest makes of their names when a test module imports them.
test_send.__test__ = False  # type: ignore[attr-defined]
TestSent.__test__ = False  # type: ignore[attr-defined]
