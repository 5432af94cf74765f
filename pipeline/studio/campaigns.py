"""The campaigns as the studio lists and shows them: each one's next send and check status, and one
campaign composed for a contact exactly as `comms preview` composes it (runs.preview, Composer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser

from pipeline.assembly.campaign import GMAIL_CLIP_BYTES
from pipeline.assembly.copy import load_copy
from pipeline.checks.runner import Finding, check
from pipeline.checks.subject import Severity
from pipeline.errors import CommsError
from pipeline.runs.preview import preview_message, shown_mailbox
from pipeline.storage.models import utcnow
from pipeline.timetable.schedules import load_schedules, occurrences
from pipeline.workspace.folders import Workspace

# How far ahead the list looks for a campaign's next send.
HORIZON = timedelta(days=366)


@dataclass(frozen=True)
class Checked:
    errors: int
    warnings: int
    infos: int
    waived: int

    @property
    def label(self) -> str:
        counts = [(self.errors, "error"), (self.warnings, "warning"), (self.infos, "info")]
        said = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts if n]
        if self.waived:
            said.append(f"{self.waived} waived")
        return ", ".join(said) or "no findings"

    @classmethod
    def of(cls, findings: tuple[Finding, ...]) -> Checked:
        def count(level: Severity) -> int:
            return sum(f.severity is level and f.waived is None for f in findings)

        waived = sum(f.waived is not None for f in findings)
        return cls(count(Severity.error), count(Severity.warning), count(Severity.info), waived)


@dataclass(frozen=True)
class CampaignRow:
    name: str
    department: str
    audience: str
    next_send: datetime | None  # in its schedule's time zone
    schedule: str | None
    checked: Checked | None
    problem: str | None  # the one-line error when the campaign cannot be read or checked


def next_sends(ws: Workspace, now: datetime) -> dict[str, tuple[datetime, str]]:
    """campaign -> (its next occurrence in an enabled schedule, that schedule); raises ScheduleError."""
    found: dict[str, tuple[datetime, str]] = {}
    for schedule in load_schedules(ws):
        if not schedule.enabled:
            continue
        for trigger in schedule.triggers:
            when = next(occurrences(trigger, schedule.timezone, now, now + HORIZON), None)
            known = found.get(schedule.campaign)
            if when is not None and (known is None or when < known[0]):
                found[schedule.campaign] = (when, schedule.name)
    return found


def campaign_rows(ws: Workspace) -> tuple[list[CampaignRow], list[str]]:
    """Every campaign with its department, audience, next send and check status; and the problems
    that concern the list as a whole (a schedule that does not load)."""
    problems: list[str] = []
    try:
        upcoming = next_sends(ws, utcnow())
    except CommsError as exc:
        upcoming = {}
        problems.append(str(exc))
    rows = []
    for name in ws.campaign_names():
        when, schedule = upcoming.get(name, (None, None))
        try:
            front = load_copy(ws, name).front
        except CommsError as exc:
            rows.append(CampaignRow(name, "", "", when, schedule, None, str(exc)))
            continue
        checked, problem = None, None
        try:
            checked = Checked.of(check(ws, name).findings)
        except CommsError as exc:
            problem = str(exc)
        rows.append(CampaignRow(name, front.department, front.audience, when, schedule, checked, problem))
    return rows, problems


@dataclass(frozen=True)
class CampaignView:
    """One campaign composed for one recipient, with what the page shows around it."""

    name: str
    department: str
    audience: str
    recipient: str  # "Name <address>", or the address
    contact: str | None  # the stored contact's address asked for; None: the [preview] contact
    subject: str
    html: str
    text: str
    headers: list[tuple[str, str]]
    html_bytes: int
    message_bytes: int
    warnings: tuple[str, ...]
    findings: tuple[Finding, ...]
    check_problem: str | None

    @property
    def clip_share(self) -> float:
        """The HTML's size as a share of Gmail's clipping line."""
        return self.html_bytes / GMAIL_CLIP_BYTES

    @property
    def checked(self) -> Checked:
        return Checked.of(self.findings)


def campaign_view(ws: Workspace, name: str, *, contact: str | None = None) -> CampaignView:
    """NAME as CONTACT (a stored contact's address) or the [preview] contact gets it; raises the
    CommsError that stops it being built (a copy, layout or template error, an unknown contact)."""
    message = preview_message(ws, name, contact_email=contact)
    rendered, outgoing = message.composed
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(outgoing.data)
    headers = [(key, str(value)) for key, value in parsed.items()]
    findings: tuple[Finding, ...] = ()
    problem = None
    try:
        findings = check(ws, name, message.campaign).findings
    except CommsError as exc:
        problem = str(exc)
    recipient = message.recipient
    return CampaignView(
        name=name,
        department=message.campaign.department,
        audience=message.campaign.audience,
        recipient=shown_mailbox(recipient.display_name, recipient.email),
        contact=contact,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        headers=headers,
        html_bytes=len(rendered.html.encode()),
        message_bytes=len(outgoing.data),
        warnings=message.campaign.warnings,
        findings=findings,
        check_problem=problem,
    )
