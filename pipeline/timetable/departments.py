"""The departments' side of the plan: what is planned for each department, and whether the cadence its
head asked for is met, or exceeded, by the plan's occurrences.

Periods are calendar periods in each occurrence's local time (ISO weeks, calendar months...). A
period counts towards "not met" only when the whole of it lies in the window, so a two-week plan
never says a monthly cadence is missed; "exceeded" is said of any period, whole or not.
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pipeline.assembly.copy import load_copy
from pipeline.errors import CommsError
from pipeline.timetable.plan import Occurrence, build_plan
from pipeline.workspace.departments import Cadence, Department, Period, load_departments
from pipeline.workspace.folders import Workspace

_FORTNIGHT_EPOCH = date(2000, 1, 3)  # a Monday: fortnights are counted from it


@dataclass(frozen=True)
class DepartmentPlan:
    department: Department
    occurrences: list[Occurrence]  # the ones its cadence counts
    campaigns: list[str]
    verdict: str  # "met", "exceeded: ...", "not met: ...", or why it cannot be told


@dataclass(frozen=True)
class DepartmentsPlan:
    start: datetime
    end: datetime
    departments: list[DepartmentPlan]
    warnings: list[str]


def department_plan(ws: Workspace, *, days: int = 90, now: datetime | None = None) -> DepartmentsPlan:
    """Each department with the occurrences planned for it in the next DAYS days and its cadence's verdict."""
    departments = load_departments(ws)
    plan = build_plan(ws, days=days, now=now)
    result = []
    for dept in departments:
        counted = [o for o in plan.occurrences if _counts(dept, o)]
        campaigns = sorted({o.campaign for o in counted})
        verdict = _verdict(dept.cadence, counted, plan.start, plan.end) if dept.cadence else "no cadence"
        result.append(DepartmentPlan(dept, counted, campaigns, verdict))
    return DepartmentsPlan(plan.start, plan.end, result, _unknown_departments(ws, departments))


def _counts(dept: Department, occurrence: Occurrence) -> bool:
    if dept.cadence is not None and dept.cadence.to_owned_audiences:
        return occurrence.audience in dept.audiences
    return occurrence.department == dept.name


def _key(day: date, period: Period) -> tuple[int, ...]:
    if period == "day":
        return (day.toordinal(),)
    if period == "week":
        return tuple(day.isocalendar()[:2])
    if period == "fortnight":
        return ((day - _FORTNIGHT_EPOCH).days // 14,)
    if period == "month":
        return (day.year, day.month)
    if period == "quarter":
        return (day.year, (day.month - 1) // 3)
    return (day.year,)


def _label(day: date, period: Period) -> str:
    if period == "month":
        return f"{calendar.month_abbr[day.month]} {day.year}"
    if period == "quarter":
        return f"Q{(day.month - 1) // 3 + 1} {day.year}"
    if period == "year":
        return str(day.year)
    return f"the {period} of {day:%Y-%m-%d}"


def _verdict(cadence: Cadence, counted: list[Occurrence], start: datetime, end: datetime) -> str:
    period = cadence.period
    per: Counter[tuple[int, ...]] = Counter(_key(o.when.date(), period) for o in counted)
    first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    labels: dict[tuple[int, ...], str] = {}
    for day in days:
        labels.setdefault(_key(day, period), _label(day, period))
    whole = set(labels)  # less the periods the window cuts at either end
    for edge, outside in (
        (first_day, first_day - timedelta(days=1)),
        (last_day, last_day + timedelta(days=1)),
    ):
        if _key(outside, period) == _key(edge, period):
            whole.discard(_key(edge, period))
    if cadence.maximum is not None:
        over = [(k, n) for k, n in sorted(per.items()) if n > cadence.maximum]
        if over:
            key, count = over[0]
            return f"exceeded: {count} in {labels.get(key, key)} (at most {cadence.maximum})"
    if cadence.minimum is not None:
        if not whole:
            return f"not exceeded; no whole {period} in the window to tell whether it is met"
        short = [k for k in sorted(whole) if per[k] < cadence.minimum]
        if short:
            key = short[0]
            return f"not met: {per[key]} in {labels[key]} (at least {cadence.minimum})"
    return "met"


def _unknown_departments(ws: Workspace, departments: list[Department]) -> list[str]:
    """Campaigns naming a department that has no departments/NAME.toml."""
    known = {d.name for d in departments}
    warnings = []
    for name in ws.campaign_names():
        try:
            front = load_copy(ws, name).front
        except CommsError:
            continue  # `comms plan` and `comms preview` say what is wrong with it
        if front.department not in known:
            warnings.append(
                f"templates/copy/{name}.md: department {front.department!r} has no departments/"
                f"{front.department}.toml"
            )
    return warnings
