"""What the rules read: one campaign's message exactly as a send builds it, and what a rule reports.

The checked message is built the way a run builds one: the campaign assembled, click and open
tracking put in, rendered for the ``[preview]`` contact with the links of a delivery, made into MIME
and DKIM-signed when ``[dkim]`` is set. Rules only read it (Mailman's "checks never change the
message").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from enum import StrEnum
from functools import cached_property
from typing import Protocol

import lxml.html
from lxml.etree import _Element

from pipeline.assembly.campaign import Campaign, assemble, check_campaign
from pipeline.assembly.copy import Copy, load_copy
from pipeline.assembly.personalize import preview_recipient
from pipeline.assembly.text import html_to_text
from pipeline.assembly.tracking import HONEYPOT_ATTRIBUTE, render_link, track_campaign
from pipeline.checks.sources import Location, SourceMap
from pipeline.message.compose import Composer
from pipeline.message.dkim import Signer
from pipeline.message.urls import recipient_links
from pipeline.types import Recipient, Rendered
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

# A check needs token keys to build the links; without COMMS_SECRET they are signed with this
# throwaway key (such a message is never sent: a send refuses to start without COMMS_SECRET).
CHECK_SECRET = "check-only"
# The delivery the checked message is built for: any number gives headers of a real one's length.
_CHECK_DELIVERY = 0


class Severity(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"


@dataclass(frozen=True)
class Rule:
    id: str  # family.name, stable: documented in README, named in [checks] and waivers
    severity: Severity  # the default
    summary: str  # one line, for README and `comms check --rules`


@dataclass(frozen=True)
class Hit:
    """What a rule found, before the runner decides how much it matters."""

    rule: Rule
    message: str
    fix: str
    where: Location | None


class Readable(Protocol):
    """What the rules that read only the HTML need (accessibility): a campaign's Subject, or a Page."""

    @property
    def settings(self) -> Settings: ...

    @property
    def tree(self) -> _Element: ...

    @property
    def sources(self) -> SourceMap: ...


@dataclass
class Subject:
    """One campaign's message as a send builds it, with what the rules need to read it."""

    ws: Workspace
    copy: Copy
    campaign: Campaign  # after tracking: html is the tracked recipient-scope source
    assembled: Campaign  # before tracking, as a run checks it against its audience
    links: tuple[str, ...]  # where tracked links lead, rendered for the recipient
    recipient: Recipient
    rendered: Rendered  # subject, html and text for the recipient
    raw: bytes  # the MIME message, signed when [dkim] is set
    sources: SourceMap
    unsubscribe_url: str
    # Read the audience in the database too (checks.recipients); a run's gate does that itself,
    # for the audience the run goes to, so it passes False.
    scan_audience: bool = True

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @cached_property
    def headers(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)

    @cached_property
    def tree(self) -> _Element:
        """The HTML as the rules see it: without the hidden honeypot link tracking adds, which no
        reader sees and which would otherwise be an empty, hidden link in every message."""
        root = lxml.html.document_fromstring(self.rendered.html)
        for honeypot in root.xpath(f"//*[@{HONEYPOT_ATTRIBUTE}]"):
            honeypot.drop_tree()
        return root

    @cached_property
    def visible_text(self) -> str:
        return html_to_text(self.rendered.html, fallback="")

    @property
    def preheader(self) -> str:
        return str(self.copy.fields.get("preheader") or "")


Family = Callable[[Subject], Iterable[Hit]]


def build_subject(
    ws: Workspace, name: str, campaign: Campaign | None = None, *, scan_audience: bool = True
) -> Subject:
    """NAME's message as a send would build it (CAMPAIGN when the caller assembled it already)."""
    settings = ws.settings
    if not settings.secrets:
        settings = settings.model_copy(update={"secrets": [CHECK_SECRET]})
    copy = load_copy(ws, name)
    if campaign is None:
        campaign = assemble(ws, name)
        check_campaign(ws, campaign)
    tracked, tracked_html = track_campaign(campaign, settings)
    link_templates = [link for i, link in enumerate(tracked_html.links) if i != tracked_html.honeypot]
    recipient = preview_recipient(settings)
    composer = Composer(
        settings,
        tracked.templates,
        campaign=tracked.name,
        department=tracked.department,
        signer=Signer.from_settings(settings, ws.root),
        tracked=tracked.tracking,
    )
    rendered, outgoing = composer.compose(recipient, delivery_id=_CHECK_DELIVERY, contact_key=f"check-{name}")
    links = recipient_links(settings, _CHECK_DELIVERY)
    return Subject(
        ws=ws,
        copy=copy,
        campaign=tracked,
        assembled=campaign,
        links=tuple(render_link(link, recipient, links) for link in link_templates),
        recipient=recipient,
        rendered=rendered,
        raw=outgoing.data,
        sources=SourceMap(ws, name, campaign.layout),
        unsubscribe_url=links.unsubscribe_url,
        scan_audience=scan_audience,
    )
