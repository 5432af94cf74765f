"""The report for the head of the company, as plain data: KPIs with trend and target, departments
side by side, the best and worst campaigns, what was learned, and the glossary behind it all.

Every figure comes from the period and run views (pipeline.reports.views) and so from the one
glossary: the exec report adds no formula of its own. A KPI is a glossary rate, or a count the
period view already holds (engaged reach, messages per contact per week), or the number of runs
that delivered anything. `exec_report()` builds it; pipeline.reports.exec_render writes HTML,
PDF, CSV and JSON of it; the CLI and the daemon (and the studio) call those two. `exec_periods()`
lists the periods that have runs, for the studio's picker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from sqlalchemy import Engine

from pipeline.reports import queries
from pipeline.reports.glossary import BY_ID, METRICS, Rate, derive
from pipeline.reports.goals import Goals, Status, load_goals, status
from pipeline.reports.notes import Learning, Notes, learnings, period_notes
from pipeline.reports.periods import Period, month_of, previous, quarter_of
from pipeline.reports.queries import Scope
from pipeline.reports.rules import Recommendation
from pipeline.reports.views import (
    Figures,
    PeriodReport,
    engagement_curve,
    is_tracked,
    period_report,
    run_report,
)
from pipeline.workspace.folders import Workspace

Compare = Literal["previous", "yoy"]
TREND_PERIODS = 6
TOP = 3
DEMO = "demo:seed-history"  # Run.started_by of the demo history (`comms demo seed-history`)


@dataclass(frozen=True)
class KpiDefinition:
    id: str
    label: str
    kind: Literal["rate", "count", "number"]
    formula: str
    better: int  # +1 higher is better, -1 lower is, 0 neither (a target says which)


def _rate_kpi(metric_id: str) -> KpiDefinition:
    metric = BY_ID[metric_id]
    return KpiDefinition(metric.id, metric.label, "rate", metric.formula, metric.better)


KPIS: tuple[KpiDefinition, ...] = (
    KpiDefinition(
        "engaged_reach", "Engaged reach", "count", "contacts delivered to with a human open or click", 1
    ),
    _rate_kpi("human_click_rate"),
    _rate_kpi("unsubscribe_rate"),
    _rate_kpi("delivery_rate"),
    _rate_kpi("complaint_rate"),
    KpiDefinition(
        "messages_per_contact_per_week",
        "Messages per recipient per week",
        "number",
        "D / reach / weeks of the period",
        0,
    ),
    KpiDefinition("campaigns_sent", "Campaigns sent", "count", "runs started that delivered a message", 0),
)
KPI_IDS = frozenset(k.id for k in KPIS)
# The department table's rates (goals per department may name these).
DEPARTMENT_RATES = ("human_click_rate", "unsubscribe_rate")


@dataclass(frozen=True)
class TrendPoint:
    period: str
    value: float | None


@dataclass(frozen=True)
class Kpi:
    id: str
    label: str
    kind: str
    formula: str
    value: float | None
    rate: Rate | None  # a rate KPI's k/n and interval
    before: float | None  # the comparison period's value
    change: float | None  # value − before (a rate's in proportion points: 0.004 is 0.4 pp)
    z: float | None  # a rate's pooled two-proportion z against the comparison period
    significant: bool
    trend: list[TrendPoint]  # the last TREND_PERIODS periods, oldest first, this one last
    target: str | None
    status: Status


@dataclass(frozen=True)
class DepartmentRow:
    department: str
    suppressed: bool  # aggregate mode: fewer than min_cell delivered; no figure is shown
    delivered: int | None
    engaged_reach: int | None
    rates: dict[str, Rate | None]  # DEPARTMENT_RATES
    changes: dict[str, float | None]  # against the comparison period
    status: dict[str, Status]


@dataclass(frozen=True)
class CampaignRow:
    campaign: str
    delivered: int
    human_click_rate: Rate


@dataclass(frozen=True)
class Week:
    start: date  # a Monday (UTC)
    delivered: int
    unsubscribes: int


@dataclass(frozen=True)
class Fired:
    """A recommendation rule that fired, for the lead to accept or strike: once per rule, with
    where it fired (the period, runs) and the evidence of each."""

    rule: str
    severity: str  # the gravest of its firings
    sources: list[str]  # "period 2027-Q1", "run 12 (spring-launch)"
    evidence: list[str]  # one per source
    threshold: str
    action: str  # the first firing's suggestion


@dataclass(frozen=True)
class ExecReport:
    period: Period
    compare: Period | None
    company: str
    mode: str
    kpis: list[Kpi]
    departments: dict[str, list[DepartmentRow]]  # "sender" and "recipient"
    top: list[CampaignRow]
    bottom: list[CampaignRow]
    learnings: list[Learning]
    curve: dict[str, Rate]
    weeks: list[Week]
    notes: Notes
    recommendations: list[Fired]
    data_quality: dict[str, Rate | None]
    footnotes: list[str]


def _kpi_values(report: PeriodReport, campaigns_sent: int) -> dict[str, tuple[float | None, Rate | None]]:
    out: dict[str, tuple[float | None, Rate | None]] = {}
    for kpi in KPIS:
        if kpi.kind == "rate":
            rate = report.totals.rates.get(kpi.id)
            out[kpi.id] = (rate.value if rate else None, rate)
        elif kpi.id == "campaigns_sent":
            out[kpi.id] = (float(campaigns_sent), None)
        else:
            raw = report.reach.get(kpi.id)
            out[kpi.id] = (None if raw is None else float(raw), None)
    return out


def _campaigns_sent(engine: Engine, period: Period) -> int:
    """Runs started in PERIOD that delivered at least one message (tracked or not)."""
    with engine.connect() as conn:
        per_run = queries.counts(conn, Scope(start=period.start, end=period.end), [queries.D.c.run_id])
        return sum(1 for _, c in per_run if derive(c)["delivered"] > 0)


def _department_rows(
    engine: Engine,
    ws: Workspace,
    period: Period,
    before: Period | None,
    by: Literal["sender", "recipient"],
    goals: Goals,
) -> list[DepartmentRow]:
    settings = ws.settings
    now = period_report(engine, settings, period, by=by)
    then = (
        {row.label: row.figures for row in period_report(engine, settings, before, by=by).rows}
        if before
        else {}
    )
    column = queries.R.c.department if by == "sender" else queries.D.c.department
    with engine.connect() as conn:
        tracked = tuple(
            r.id for r in queries.runs_in(conn, _scope(period)) if is_tracked(r) and r.id is not None
        )
        reach = {
            key[0] or "(none)": value
            for key, value in queries.reach_by(conn, Scope(run_ids=tracked), [column]).items()
        }
    rows = []
    for row in now.rows:
        shown = row.figures
        if shown.suppressed or shown.counts is None:
            rows.append(
                DepartmentRow(
                    row.label,
                    True,
                    None,
                    None,
                    dict.fromkeys(DEPARTMENT_RATES),
                    dict.fromkeys(DEPARTMENT_RATES),
                    dict.fromkeys(DEPARTMENT_RATES, "no data"),
                )
            )
            continue
        rates = {metric: shown.rates.get(metric) for metric in DEPARTMENT_RATES}
        earlier = then.get(row.label)
        changes = {metric: _change(rates[metric], earlier, metric) for metric in DEPARTMENT_RATES}
        rows.append(
            DepartmentRow(
                department=row.label,
                suppressed=False,
                delivered=shown.counts["delivered"],
                engaged_reach=reach.get(row.label, (0, 0))[1],
                rates=rates,
                changes=changes,
                status={
                    metric: status(
                        goals.for_department(row.label, metric), _value(rates[metric]), rates[metric]
                    )
                    for metric in DEPARTMENT_RATES
                },
            )
        )
    return rows


def _value(rate: Rate | None) -> float | None:
    return rate.value if rate else None


def _change(rate: Rate | None, earlier: Figures | None, metric: str) -> float | None:
    if rate is None or rate.value is None or earlier is None or earlier.suppressed:
        return None
    before = earlier.rates.get(metric)
    return None if before is None or before.value is None else rate.value - before.value


def _scope(period: Period) -> Scope:
    return Scope(start=period.start, end=period.end)


def _campaign_rows(report: PeriodReport) -> tuple[list[CampaignRow], list[CampaignRow]]:
    """The TOP best and worst campaigns by human click rate (worst first), none in both lists."""
    ranked = []
    for row in report.rows:
        rate = row.figures.rates.get("human_click_rate")
        if row.figures.counts is None or rate is None or rate.value is None:
            continue
        ranked.append(CampaignRow(row.label, row.figures.counts["delivered"], rate))
    ranked.sort(key=lambda r: (-(r.human_click_rate.value or 0.0), r.campaign))
    top = ranked[:TOP]
    rest = ranked[TOP:]
    return top, list(reversed(rest[-TOP:]))


def _weeks(engine: Engine, period: Period) -> tuple[list[Week], dict[str, Rate]]:
    """Delivered and unsubscribes per week of the period's runs; the pooled engagement curve."""
    with engine.connect() as conn:
        runs = {r.id: r for r in queries.runs_in(conn, _scope(period))}
        per_run = {key[0]: derive(c) for key, c in queries.counts(conn, _scope(period), [queries.D.c.run_id])}
        delays: list[float] = []
        for run_id, run in runs.items():
            if run_id is not None and is_tracked(run):
                delays += [(c - s).total_seconds() for s, c in queries.first_human_clicks(conn, run_id)]
    first = (period.start - timedelta(days=period.start.weekday())).date()
    totals: dict[date, list[int]] = {}
    day = first
    while datetime(day.year, day.month, day.day, tzinfo=UTC) < period.end:
        totals[day] = [0, 0]
        day += timedelta(days=7)
    for run_id, counts in per_run.items():
        found = runs.get(run_id)
        if found is None or found.started_at is None:
            continue
        started = queries._aware(found.started_at).date()
        monday = started - timedelta(days=started.weekday())
        week = totals.setdefault(monday, [0, 0])
        week[0] += counts["delivered"]
        week[1] += counts["unsubscribes"]
    weeks = [Week(start, d, u) for start, (d, u) in sorted(totals.items())]
    return weeks, engagement_curve(sorted(delays))


_GRAVITY = {"critical": 0, "warning": 1, "info": 2}


def _fired(engine: Engine, ws: Workspace, report: PeriodReport) -> list[Fired]:
    """Every recommendation rule that fired for the period or one of its runs, gravest first."""
    firings = [(f"period {report.period.label}", r) for r in report.recommendations if r.status == "fired"]
    with engine.connect() as conn:
        runs = [r for r in queries.runs_in(conn, _scope(report.period)) if is_tracked(r) and r.id is not None]
    for run in runs:
        assert run.id is not None
        source = f"run {run.id} ({run.campaign})"
        firings += [
            (source, r)
            for r in run_report(engine, ws.settings, run.id).recommendations
            if r.status == "fired"
        ]
    rules: dict[str, list[tuple[str, Recommendation]]] = {}
    for source, found in firings:
        rules.setdefault(found.rule, []).append((source, found))
    out = []
    for rule, fired in rules.items():
        first = fired[0][1]
        gravest = min((r.severity for _, r in fired), key=lambda s: _GRAVITY.get(s, 3))
        sources = [source for source, _ in fired]
        evidence = [r.evidence for _, r in fired]
        out.append(Fired(rule, gravest, sources, evidence, first.threshold, first.action))
    return sorted(out, key=lambda f: (_GRAVITY.get(f.severity, 3), f.rule))


def trend_periods(period: Period) -> list[Period]:
    """PERIOD and the TREND_PERIODS − 1 periods before it, oldest first."""
    out = [period]
    for _ in range(TREND_PERIODS - 1):
        out.append(previous(out[-1]))
    return out[::-1]


@dataclass(frozen=True)
class PeriodChoice:
    """The periods an exec report can be asked for, as a picker offers them."""

    quarters: list[Period]  # those in which a run started, newest first
    months: list[Period]
    default: Period  # the latest complete quarter with runs (else the latest; else the last complete)


def exec_periods(engine: Engine, now: datetime) -> PeriodChoice:
    """The quarters and months in which runs started, and the one a report opens on."""
    with engine.connect() as conn:
        starts = queries.run_starts(conn)
    quarters = list({q.label: q for q in map(quarter_of, reversed(starts))}.values())
    months = list({m.label: m for m in map(month_of, reversed(starts))}.values())
    complete = [q for q in quarters if q.end <= now]
    default = (complete or quarters or [previous(quarter_of(now))])[0]
    return PeriodChoice(quarters, months, default)


def exec_report(
    engine: Engine, ws: Workspace, period: Period, *, compare: Compare = "previous"
) -> ExecReport:
    """Everything the exec report shows for runs started in PERIOD, compared with COMPARE."""
    settings = ws.settings
    goals = load_goals(ws, KPI_IDS | frozenset(DEPARTMENT_RATES))
    periods = trend_periods(period)
    history = [period_report(engine, settings, p) for p in periods[:-1]]
    current = period_report(engine, settings, period, compare=compare)
    history.append(current)
    values = [_kpi_values(r, _campaigns_sent(engine, r.period)) for r in history]
    other = current.compare
    if compare == "previous":
        before_values = values[-2]
    else:
        assert other is not None
        before_values = _kpi_values(period_report(engine, settings, other), _campaigns_sent(engine, other))
    deltas = {d.metric: d for d in current.deltas}
    kpis = []
    for definition in KPIS:
        value, rate = values[-1][definition.id]
        before, _ = before_values[definition.id]
        delta = deltas.get(definition.id)
        target = goals.overall.get(definition.id)
        kpis.append(
            Kpi(
                id=definition.id,
                label=definition.label,
                kind=definition.kind,
                formula=definition.formula,
                value=value,
                rate=rate,
                before=before,
                change=None if value is None or before is None else value - before,
                z=delta.z if delta else None,
                significant=bool(delta and delta.significant),
                trend=[
                    TrendPoint(p.label, v[definition.id][0]) for p, v in zip(periods, values, strict=True)
                ],
                target=target.describe(percent=definition.kind == "rate") if target else None,
                status=status(target, value, rate),
            )
        )
    sides: tuple[Literal["sender", "recipient"], ...] = ("sender", "recipient")
    departments: dict[str, list[DepartmentRow]] = {
        by: _department_rows(engine, ws, period, other, by, goals) for by in sides
    }
    top, bottom = _campaign_rows(current)
    weeks, curve = _weeks(engine, period)
    footnotes = list(current.footnotes)
    with engine.connect() as conn:
        demo = [r for r in queries.runs_in(conn, _scope(period)) if r.started_by == DEMO]
    if demo:
        footnotes.insert(
            0, f"DEMO DATA: {len(demo)} runs of this period are synthetic (comms demo seed-history)"
        )
    return ExecReport(
        period=period,
        compare=other,
        company=settings.brand.company,
        mode=settings.reports.mode,
        kpis=kpis,
        departments=departments,
        top=top,
        bottom=bottom,
        learnings=learnings(ws, period),
        curve=curve,
        weeks=weeks,
        notes=period_notes(ws, period),
        recommendations=_fired(engine, ws, current),
        data_quality={
            metric.id: current.totals.rates.get(metric.id)
            for metric in METRICS
            if metric.id in ("machine_open_share", "machine_click_share", "apple_proxy_share")
        },
        footnotes=footnotes,
    )
