"""The communication plan: every upcoming occurrence in schedules/, who it reaches, and what to look at.

What the communications lead reads before a week starts: each occurrence in its
schedule's local time with campaign, department, audience and the audience's size
today, its production stage (front matter `stage:`, `owner:`) and whether its current
content is approved, and warnings for campaigns that do not assemble, for two campaigns
reaching the same people on one day, for contacts the [dispatch] max_per_week cap will
skip (the cap is applied at send time; the plan says in advance whom it will hit), and
for an unapproved campaign whose occurrence is closer than `[approvals] lead_time`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import combinations

from sqlalchemy import Engine
from sqlmodel import Session, col

from pipeline.approvals.content import campaign_content
from pipeline.approvals.ledger import verdict
from pipeline.assembly.campaign import assemble, check_campaign
from pipeline.assembly.copy import load_copy
from pipeline.audience.segments import audience_query, count_audience, load_audience
from pipeline.errors import CommsError
from pipeline.storage import outbox
from pipeline.storage.engines import connect
from pipeline.storage.models import Contact, utcnow
from pipeline.timetable.schedules import Schedule, load_schedules, occurrences
from pipeline.workspace.folders import Workspace

_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Occurrence:
    when: datetime  # in the schedule's time zone
    schedule: str
    campaign: str
    department: str
    audience: str
    recipients: int | None  # None: the audience could not be resolved (see the warnings)
    window: str | None
    stage: str = ""
    owner: str | None = None
    due: date | None = None  # when the copy says it should be approved by
    approved: bool | None = None  # None: approvals are off, or the campaign does not assemble


@dataclass(frozen=True)
class Plan:
    start: datetime
    end: datetime
    occurrences: list[Occurrence]
    warnings: list[str]


@dataclass(frozen=True)
class _Campaign:
    department: str
    audience: str
    stage: str
    owner: str | None
    due: date | None
    approved: bool | None = None


class _Planner:
    def __init__(self, ws: Workspace, engine: Engine) -> None:
        self.ws = ws
        self.engine = engine
        self.warnings: list[str] = []
        self.campaigns: dict[str, _Campaign | None] = {}
        self.members: dict[str, frozenset[int] | None] = {}

    def campaign(self, schedule: Schedule) -> _Campaign | None:
        """The campaign's department and audience; a warning (once) if it does not assemble."""
        name = schedule.campaign
        if name not in self.campaigns:
            try:
                assembled = assemble(self.ws, name)
                check_campaign(self.ws, assembled)
                front = load_copy(self.ws, name).front
                approved = None
                if self.ws.settings.approvals.required:
                    content = campaign_content(self.ws, name, assembled)
                    with self.engine.begin() as conn:
                        approved = verdict(self.ws, conn, name, content=content).approval is not None
                self.campaigns[name] = _Campaign(
                    assembled.department, assembled.audience, front.stage, front.owner, front.due, approved
                )
            except CommsError as exc:
                self.warnings.append(f"{schedule.path}: campaign {name} does not assemble: {exc}")
                self.campaigns[name] = self._front_matter(name)
        return self.campaigns[name]

    def _front_matter(self, name: str) -> _Campaign | None:
        try:
            copy = load_copy(self.ws, name)
        except CommsError:
            return None
        front = copy.front
        return _Campaign(front.department, front.audience, front.stage, front.owner, front.due)

    def audience(self, schedule: Schedule, name: str) -> frozenset[int] | None:
        """The contact ids the audience reaches today; a warning (once) if it cannot be resolved."""
        if name not in self.members:
            try:
                audience = load_audience(self.ws, name)
                with Session(self.engine) as db:
                    count_audience(db, audience)  # refuses lists the database does not have
                    query = audience_query(audience).with_only_columns(col(Contact.id))
                    self.members[name] = frozenset(db.scalars(query))
            except CommsError as exc:
                self.warnings.append(f"{schedule.path}: audience {name}: {exc}")
                self.members[name] = None
        return self.members[name]


def build_plan(ws: Workspace, *, days: int = 14, now: datetime | None = None) -> Plan:
    """Every occurrence of an enabled schedule from NOW for DAYS days, with its warnings."""
    start = now or utcnow()
    end = start + timedelta(days=days)
    engine = connect(ws.settings)
    try:
        planner = _Planner(ws, engine)
        found: list[Occurrence] = []
        for schedule in load_schedules(ws):
            if not schedule.enabled:
                continue
            campaign = planner.campaign(schedule)
            audience = schedule.audience or (campaign.audience if campaign else "")
            members = planner.audience(schedule, audience) if audience else None
            for trigger in schedule.triggers:
                for when in occurrences(trigger, schedule.timezone, start, end):
                    found.append(
                        Occurrence(
                            when=when,
                            schedule=schedule.name,
                            campaign=schedule.campaign,
                            department=campaign.department if campaign else "",
                            audience=audience,
                            recipients=len(members) if members is not None else None,
                            window=str(schedule.window) if schedule.window else None,
                            stage=campaign.stage if campaign else "",
                            owner=campaign.owner if campaign else None,
                            due=campaign.due if campaign else None,
                            approved=campaign.approved if campaign else None,
                        )
                    )
        found.sort(key=lambda o: (o.when, o.schedule))
        warnings = planner.warnings + _unapproved(found, start, ws.settings.approvals.lead_time)
        warnings += _overlaps(found, planner.members)
        cap = ws.settings.dispatch.max_per_week
        if cap is not None:
            with engine.connect() as conn:
                sent = outbox.sent_by_contact_since(conn, start - _WEEK)
            warnings += _capped(found, planner.members, sent, cap)
        return Plan(start, end, found, warnings)
    finally:
        engine.dispose()


def _unapproved(found: list[Occurrence], start: datetime, lead_time: timedelta) -> list[str]:
    """Occurrences inside the lead time whose campaign's current content has no approval."""
    warnings = []
    overdue = {o.campaign: o for o in found if o.approved is False and o.due and o.due < start.date()}
    for name, occurrence in sorted(overdue.items()):
        owner = f" (owner {occurrence.owner})" if occurrence.owner else ""
        warnings.append(f"{name} was due for approval on {occurrence.due}{owner} and is {occurrence.stage}")
    for occurrence in found:
        if occurrence.approved is not False or occurrence.when - start >= lead_time:
            continue
        owner = f", owner {occurrence.owner}" if occurrence.owner else ""
        hours = (occurrence.when - start).total_seconds() / 3600
        warnings.append(
            f"{occurrence.when:%Y-%m-%d %H:%M %Z} {occurrence.schedule}: {occurrence.campaign} is "
            f"{occurrence.stage}{owner} and not approved, {hours:.0f} h before it goes out (lead time "
            f"{_days(lead_time)}): it is blocked unless someone runs `comms approve {occurrence.campaign}`"
        )
    return warnings


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{span.total_seconds() / 3600:g} h"


def _overlaps(found: list[Occurrence], members: dict[str, frozenset[int] | None]) -> list[str]:
    """Two campaigns whose audiences share contacts on the same (local) day."""
    by_day: dict[date, list[Occurrence]] = defaultdict(list)
    for occurrence in found:
        by_day[occurrence.when.date()].append(occurrence)
    warnings = []
    for day, same_day in sorted(by_day.items()):
        for first, second in combinations(same_day, 2):
            if first.campaign == second.campaign:
                continue
            a, b = members.get(first.audience), members.get(second.audience)
            shared = len(a & b) if a is not None and b is not None else 0
            if shared:
                warnings.append(
                    f"{day}: {first.campaign} ({first.audience}) and {second.campaign} ({second.audience}) "
                    f"both reach {shared} contacts that day"
                )
    return warnings


def _capped(
    found: list[Occurrence],
    members: dict[str, frozenset[int] | None],
    sent: dict[int, list[datetime]],
    cap: int,
) -> list[str]:
    """Occurrences at which some contacts will already have had CAP messages in the trailing 7 days.

    Walks the plan in time order as the workers will: a contact skipped by the cap is not
    sent that message, so it does not count towards the next one.
    """
    received: dict[int, list[datetime]] = defaultdict(list, {k: list(v) for k, v in sent.items()})
    warnings = []
    for occurrence in found:
        audience = members.get(occurrence.audience) or frozenset()
        since = occurrence.when - _WEEK
        skipped = 0
        for contact in audience:
            times = received[contact]
            if sum(1 for moment in times if moment > since) >= cap:
                skipped += 1
            else:
                times.append(occurrence.when)
        if skipped:
            warnings.append(
                f"{occurrence.when:%Y-%m-%d %H:%M %Z} {occurrence.schedule}: {skipped} contacts will "
                f"already have had max_per_week={cap} messages in 7 days and will be skipped"
            )
    return warnings


__all__ = ["Occurrence", "Plan", "build_plan"]
