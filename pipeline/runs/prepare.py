"""Starting a run, first half: what it sends, made from the campaign's files without the database.

Assembled (each A/B variant), rendered for the [preview] contact, held to `comms check`'s rules,
one message built with the sender and DKIM keys, hashed as an approval must match it, and frozen
with its tracked links: every gate of the content, in that order. pipeline.runs.start does the
other half (the audience, the approval, the snapshot) from what this returns.

Apart because each half loads what the other does not: assembly and the checks (premailer, lxml,
mjml, coloraide: 25 MB) and the database layer (SQLAlchemy, SQLModel: 30 MB). `comms send` makes
this half in a fresh process (pipeline.runs.apart) and the other in another, so no process of a
run holds both. This module imports neither: the libraries that assemble load when assemble()
runs (pipeline.assembly.campaign), the checks when refuse_failing_checks does, so that the
process that starts the run can import Prepared and prepare_run with runs.start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.approvals.content import Content, campaign_content
from pipeline.assembly.campaign import Campaign, assemble, check_campaign
from pipeline.assembly.copy import load_copy
from pipeline.assembly.personalize import preview_recipient
from pipeline.assembly.tracking import TrackedHtml, cta_link, track_campaign
from pipeline.assembly.variants import AbTest, load_test
from pipeline.delivery.transports import transport_for
from pipeline.errors import CommsError, SettingsError
from pipeline.message.compose import Composer
from pipeline.message.dkim import Signer
from pipeline.types import Templates
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings


@dataclass(frozen=True)
class Prepared:
    """A campaign past every content gate and frozen, as pipeline.runs.prepare makes it; plain data,
    so that it crosses from the process that made it."""

    campaign: Campaign  # the campaign, or its A/B test's control
    variants: tuple[Campaign, ...]  # with a test: every variant assembled, the control first
    test: AbTest | None
    content: Content | None  # what an approval must match; None when [approvals] are not required
    tracked: Campaign  # CAMPAIGN with its links tracked: the run's templates
    tracked_html: TrackedHtml  # the run's whole link list (every variant's) and its honeypot
    ab: dict[str, Any]  # the frozen A/B test for Run.meta["ab"] ({} without one)
    cta_link: int | None


def prepare_run(ws: Workspace, campaign: str, settings: Settings | None = None) -> Prepared:
    """CAMPAIGN through every content gate and frozen, or the first gate's one-line error.

    SETTINGS build the sender's message and the tracked links: the workspace's, unless given (a dry
    run's carry a preview secret when COMMS_SECRET is unset)."""
    settings = settings or ws.settings
    settings.secret  # noqa: B018 -- refuse now rather than after assembling: links need COMMS_SECRET
    copy = load_copy(ws, campaign)
    test = load_test(copy)
    variants = tuple(assemble(ws, campaign, name) for name in test.variants) if test else ()
    assembled = variants[0] if variants else assemble(ws, campaign)
    for each in variants or (assembled,):
        check_campaign(ws, each)
    check_sender(settings, ws)
    for each in variants or (assembled,):
        refuse_failing_checks(ws, each)
    content = campaign_content(ws, campaign, assembled) if ws.settings.approvals.required else None
    tracked, tracked_html = track_campaign(assembled, settings)
    ab: dict[str, Any] = {}
    if test is not None:
        tracked_html, ab = _freeze_test(test, variants, tracked_html, settings)
    return Prepared(
        campaign=assembled,
        variants=variants,
        test=test,
        content=content,
        tracked=tracked,
        tracked_html=tracked_html,
        ab=ab,
        cta_link=cta_link(copy.fields.get("cta_url"), tracked_html.links),
    )


def prepare_at(root: Path, campaign: str) -> Prepared:
    """prepare_run for the workspace at ROOT: what a fresh process is given (runs.apart)."""
    return prepare_run(Workspace.open(root), campaign)


def refuse_failing_checks(ws: Workspace, campaign: Campaign) -> None:
    """`comms check`'s rules on the message as it would go out: an error finding that the copy
    does not waive raises CheckFailed with its file and line, and nothing is written or sent."""
    from pipeline.checks import runner as checks  # see the module's docstring

    # The run's own audience is checked by runs.start.check_variables (it may not be the copy's).
    checks.refuse_on_errors(checks.check(ws, campaign.name, campaign, scan_audience=False))


def check_sender(settings: Settings, ws: Workspace) -> None:
    """Build one message for the [preview] contact as a run would, and the transport (not opened),
    so a bad [sender] address, DKIM key or [transport] URL is refused now, naming comms.toml,
    rather than leaving a run that can only pause."""
    transport_for(settings, ws.root)
    try:
        signer = Signer.from_settings(settings, ws.root)
        templates = Templates("check", "<p>check</p>", "check")
        composer = Composer(
            settings, templates, campaign="check", department="check", signer=signer, tracked=False
        )
        composer.compose(preview_recipient(settings), delivery_id=None, contact_key="check")
    except SettingsError:
        raise
    except CommsError as exc:
        raise SettingsError(exc.message, path=ws.relative(ws.root / "comms.toml")) from None


def _freeze_test(
    test: AbTest, variants: tuple[Campaign, ...], control: TrackedHtml, settings: Settings
) -> tuple[TrackedHtml, dict[str, Any]]:
    """The run's A/B test as it is frozen in Run.meta["ab"]: the test as the copy states it, and each
    variant's tracked templates (the control's are the run's own), their links continuing the
    control's; returns the run's whole link list too."""
    templates: dict[str, list[str]] = {}
    hashes = {test.control: variants[0].template_hash}
    links = control
    for variant in variants[1:]:
        tracked, links = track_campaign(variant, settings, after=links)
        templates[variant.variant] = [tracked.subject, tracked.html, tracked.text]
        hashes[variant.variant] = variant.template_hash
    frozen = {
        "variants": list(test.variants),
        "control": test.control,
        "test": test.test.model_dump(mode="json", exclude={"decide_after"})
        | {"decide_after_s": test.test.decide_after.total_seconds()},
        "template_hashes": hashes,
        "templates": templates,
    }
    return links, frozen
