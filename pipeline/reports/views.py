"""The report views as plain data: run, campaign series, departments, period.

Each function returns dataclasses of numbers and labels (no formatting); pipeline.reports.render
turns them into text, JSON, CSV or HTML, so every output shows the same figures, and later views
(the exec report, A/B tests, the studio) can build on these.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from pipeline.errors import ReportError
from pipeline.reports import queries
from pipeline.reports.ab import ab_view
from pipeline.reports.glossary import (
    CURVE_HOURS,
    METRICS,
    Rate,
    derive,
    estimated_openers,
    p_chart_limits,
    quantile,
    rates,
    significant,
    two_proportion_z,
    wilson,
)
from pipeline.reports.periods import Period, previous, year_before
from pipeline.reports.queries import Scope
from pipeline.reports.rules import Recommendation, period_rules, run_rules
from pipeline.storage.models import Run
from pipeline.workspace.settings import Settings


@dataclass(frozen=True)
class Figures:
    """One group's counts and every glossary rate of it; SUPPRESSED hides a small cell (aggregate mode)."""

    counts: dict[str, int] | None
    rates: dict[str, Rate | None]
    estimated_openers: float | None
    suppressed: bool = False


def figures(counts: dict[str, int], *, tracked: bool = True) -> Figures:
    full = derive(counts)
    return Figures(full, rates(full, tracked=tracked), estimated_openers(full) if tracked else None)


def _cell(label: str, counts: dict[str, int], settings: Settings) -> Row:
    """A breakdown row, suppressed in aggregate mode below [reports] min_cell delivered recipients."""
    shown = figures(counts)
    small = shown.counts is not None and shown.counts["delivered"] < settings.reports.min_cell
    if settings.reports.mode == "aggregate" and small:
        return Row(label, Figures(None, {m.id: None for m in METRICS}, None, suppressed=True))
    return Row(label, shown)


@dataclass(frozen=True)
class Row:
    label: str
    figures: Figures


@dataclass(frozen=True)
class LinkRow:
    index: int
    position: int  # 1-based, in the message's order, honeypot left out
    url: str
    clickers: int
    raw_clickers: int
    ctr: Rate  # clickers / D
    share: Rate  # clickers / all human clickers
    cta: bool  # the front matter's cta_url


@dataclass(frozen=True)
class RunReport:
    run_id: int
    campaign: str
    department: str
    audience: str
    subject: str
    status: str
    started_at: datetime | None
    tracked: bool
    mode: str
    figures: Figures
    departments: list[Row]
    links: list[LinkRow]
    curve: dict[str, Rate]  # "1h" -> share of eventual clickers who had clicked by then
    first_click_median_s: float | None
    first_click_p75_s: float | None
    click_peak_hour: int | None  # UTC hour with most first human clicks
    reasons: dict[str, dict[str, int]]
    footnotes: list[str]
    recommendations: list[Recommendation]
    # The run's A/B test as frozen at start (variants, control, test) and, once decided, its decision
    # with the figures and the rule (pipeline.experiments.decision), as reports.ab shows it (small
    # arms suppressed in aggregate mode); None outside a test.
    ab: dict[str, Any] | None = None


def _run(conn: Connection, run_id: int) -> Run:
    found = queries.runs_in(conn, Scope(run_ids=(run_id,)))
    if not found:
        raise ReportError(f"no run {run_id}")
    return found[0]


def is_tracked(run: Run) -> bool:
    return bool(run.meta.get("tracking", True)) and bool(
        run.meta.get("links") or run.html_template.find("tracking.open_url") >= 0
    )


def _footnotes(conn: Connection, scope: Scope, runs: Iterable[Run]) -> list[str]:
    notes = ["test sends (`comms send --to`) are never recorded as deliveries, so no rate includes them"]
    seeds = queries.seeds(conn, scope)
    if seeds:
        notes.append(f"{seeds} seed deliveries left out of every count and rate")
    untracked = [run for run in runs if not is_tracked(run)]
    if untracked:
        ids = ", ".join(str(run.id) for run in untracked)
        notes.append(f"{len(untracked)} runs with tracking off ({ids}): left out of engagement figures")
    notes.append("machine opens and clicks (privacy proxies, link scanners) are kept apart: see reasons")
    return notes


def run_report(engine: Engine, settings: Settings, run_id: int) -> RunReport:
    """Everything `comms report run` shows about RUN_ID."""
    with engine.connect() as conn:
        run = _run(conn, run_id)
        tracked = is_tracked(run)
        scope = Scope(run_ids=(run_id,))
        [(_, counts)] = list(queries.counts(conn, scope)) or [((), _empty())]
        shown = figures(counts, tracked=tracked)
        assert shown.counts is not None
        departments = [
            _cell(values[0] or "(none)", c, settings)
            for values, c in queries.counts(conn, scope, [queries.D.c.department])
        ]
        links = _links(conn, run, shown.counts)
        clicks = queries.first_human_clicks(conn, run_id)
        delays = sorted((clicked - sent).total_seconds() for sent, clicked in clicks)
        curve = engagement_curve(delays)
        hours = [clicked.hour for _, clicked in clicks]
        peak = statistics.mode(hours) if hours else None
        raw_reasons = queries.reasons(conn, run_id)
        reasons = {
            "bounce": raw_reasons.get(("bounce", False), {}),
            "complaint": raw_reasons.get(("complaint", False), {}),
            "unsubscribe": raw_reasons.get(("unsubscribe", False), {}),
            "machine_open": raw_reasons.get(("open", True), {}),
            "machine_click": raw_reasons.get(("click", True), {}),
            "rejected_at_smtp": queries.rejections(conn, run_id),
        }
        history = _department_unsubscribe_history(conn, run, settings.reports.rules.unsubscribe_history_runs)
        series = _series(conn, Scope(campaign=run.schedule or run.campaign))
        footnotes = _footnotes(conn, scope, [run])
    report = RunReport(
        run_id=run_id,
        campaign=run.campaign,
        department=run.department,
        audience=run.audience,
        subject=run.subject_template,
        status=run.status,
        started_at=queries._aware(run.started_at) if run.started_at else None,
        tracked=tracked,
        mode=settings.reports.mode,
        figures=shown,
        departments=departments,
        links=links,
        curve=curve,
        first_click_median_s=quantile(delays, 0.5),
        first_click_p75_s=quantile(delays, 0.75),
        click_peak_hour=peak,
        reasons=reasons,
        footnotes=footnotes,
        recommendations=[],
        ab=ab_view(run, settings),
    )
    point = next((p for p in series if p.run_id == run_id), None)
    report.recommendations.extend(run_rules(report, settings.reports.rules, history, point, len(series)))
    return report


def engagement_curve(delays_s: list[float]) -> dict[str, Rate]:
    """ "1h" -> share of the eventual human clickers whose first click came within the hour (and 4h...)."""
    return {f"{h}h": wilson(sum(1 for d in delays_s if d <= h * 3600), len(delays_s)) for h in CURVE_HOURS}


def _empty() -> dict[str, int]:
    names = (
        "snapshotted attempted accepted hard_bounced soft_bounced complaints unsubscribes pixel_openers "
        "human_pixel_openers inferred_openers apple_proxy_openers trackable trackable_openers "
        "raw_clickers clickers"
    )
    return dict.fromkeys(names.split(), 0)


def _links(conn: Connection, run: Run, counts: dict[str, int]) -> list[LinkRow]:
    assert run.id is not None
    stored: list[str] = list(run.meta.get("links", []))
    honeypot = run.meta.get("honeypot")
    cta = run.meta.get("cta_link")
    clicked = queries.link_clickers(conn, run.id)
    rows = []
    position = 0
    for index, url in enumerate(stored):
        if index == honeypot:
            continue
        position += 1
        human, raw = clicked.get(index, (0, 0))
        rows.append(
            LinkRow(
                index=index,
                position=position,
                url=url,
                clickers=human,
                raw_clickers=raw,
                ctr=wilson(human, counts["delivered"]),
                share=wilson(human, counts["clickers"]),
                cta=index == cta,
            )
        )
    return rows


def _department_unsubscribe_history(conn: Connection, run: Run, limit: int) -> list[float]:
    """Unsubscribe rates of the sending department's last LIMIT runs before RUN."""
    earlier = [
        r
        for r in queries.runs_in(conn, Scope())
        if r.department == run.department
        and r.id != run.id
        and (r.started_at or r.created_at) <= (run.started_at or run.created_at)  # type: ignore[operator]
    ][-limit:]
    if not earlier:
        return []
    out = []
    for _, c in queries.counts(
        conn, Scope(run_ids=tuple(r.id for r in earlier if r.id is not None)), [queries.D.c.run_id]
    ):
        full = derive(c)
        if full["delivered"]:
            out.append(full["unsubscribes"] / full["delivered"])
    return out


# -- campaign series -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    run_id: int
    started_at: datetime | None
    subject: str
    figures: Figures
    p: float | None  # human click rate
    lower: float | None  # p-chart limits at this run's D
    upper: float | None
    outside: Literal["below", "above", ""] = ""


@dataclass(frozen=True)
class CampaignReport:
    name: str
    p_bar: float | None
    points: list[SeriesPoint]
    footnotes: list[str]


def _series(conn: Connection, scope: Scope) -> list[SeriesPoint]:
    runs = {r.id: r for r in queries.runs_in(conn, scope) if is_tracked(r)}
    if not runs:
        return []
    per_run = {
        values[0]: derive(c)
        for values, c in queries.counts(conn, Scope(run_ids=tuple(runs)), [queries.D.c.run_id])  # type: ignore[arg-type]
    }
    clickers = sum(c["clickers"] for c in per_run.values())
    delivered = sum(c["delivered"] for c in per_run.values())
    p_bar = clickers / delivered if delivered else None
    points = []
    for run_id, run in runs.items():
        c = per_run.get(run_id)
        if c is None:
            continue
        n = c["delivered"]
        p = c["clickers"] / n if n else None
        lower = upper = None
        outside: Literal["below", "above", ""] = ""
        if p_bar is not None and n:
            lower, upper = p_chart_limits(p_bar, n)
            outside = (
                "below" if p is not None and p < lower else "above" if p is not None and p > upper else ""
            )
        started = queries._aware(run.started_at) if run.started_at else None
        assert run_id is not None
        points.append(
            SeriesPoint(
                run_id,
                started,
                run.subject_template,
                Figures(c, rates(c), estimated_openers(c)),
                p,
                lower,
                upper,
                outside,
            )
        )
    return points


def campaign_report(engine: Engine, settings: Settings, name: str) -> CampaignReport:
    """Every run of campaign (or schedule) NAME: human click rate on a p-chart, unsubscribes, subjects."""
    with engine.connect() as conn:
        scope = Scope(campaign=name)
        runs = queries.runs_in(conn, scope)
        if not runs:
            raise ReportError(f"no runs of campaign or schedule {name!r}")
        points = _series(conn, scope)
        footnotes = _footnotes(conn, scope, runs)
    clickers = sum(p.figures.counts["clickers"] for p in points if p.figures.counts)
    delivered = sum(p.figures.counts["delivered"] for p in points if p.figures.counts)
    return CampaignReport(name, clickers / delivered if delivered else None, points, footnotes)


# -- departments and periods -----------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    metric: str
    current: Rate | None
    before: Rate | None
    z: float | None
    significant: bool
    worse: bool  # significant and in the metric's bad direction


@dataclass(frozen=True)
class PeriodReport:
    period: Period
    compare: Period | None
    by: str  # "campaign", "recipient department" or "sender department"
    totals: Figures
    reach: dict[str, float | int | None]
    rows: list[Row]
    before: Figures | None
    deltas: list[Delta]
    footnotes: list[str]
    recommendations: list[Recommendation] = field(default_factory=list)


def _sum_counts(rows: Iterable[dict[str, int]]) -> dict[str, int]:
    """The counts of a whole scope from those of its groups (every count is additive)."""
    total = _empty()
    for row in rows:
        for name, value in row.items():
            total[name] += value
    return total


def _deltas(now: Figures, then: Figures) -> list[Delta]:
    out = []
    for metric in METRICS:
        a, b = now.rates.get(metric.id), then.rates.get(metric.id)
        z = two_proportion_z(a.k, a.n, b.k, b.n) if a and b else None
        sig = significant(z)
        worse = sig and z is not None and (z < 0 if metric.better > 0 else z > 0)
        out.append(Delta(metric.id, a, b, z, sig, worse))
    return out


def period_report(
    engine: Engine,
    settings: Settings,
    period: Period,
    *,
    compare: Literal["previous", "yoy"] | None = None,
    by: Literal["campaign", "recipient", "sender"] = "campaign",
) -> PeriodReport:
    """Totals of runs started in PERIOD and a table by campaign or department, with deltas to COMPARE."""
    scope = Scope(start=period.start, end=period.end)
    with engine.connect() as conn:
        runs = queries.runs_in(conn, scope)
        untracked = tuple(r.id for r in runs if not is_tracked(r) and r.id is not None)
        tracked_ids = tuple(r.id for r in runs if is_tracked(r) and r.id is not None)
        counted = Scope(run_ids=tracked_ids) if untracked else scope
        group = {
            "campaign": queries.R.c.campaign,
            "recipient": queries.D.c.department,
            "sender": queries.R.c.department,
        }[by]
        grouped = list(queries.counts(conn, counted, [group]))
        counts = _sum_counts(c for _, c in grouped)
        reached, engaged = queries.reach(conn, counted)
        reach = {"reach": reached, "engaged_reach": engaged}
        rows = [
            _cell(values[0] or "(none)", c, settings) if by != "campaign" else Row(values[0], figures(c))
            for values, c in grouped
        ]
        before_figures = None
        other = None
        if compare is not None:
            other = previous(period) if compare == "previous" else year_before(period)
            other_runs = queries.runs_in(conn, Scope(start=other.start, end=other.end))
            ids = tuple(r.id for r in other_runs if is_tracked(r) and r.id is not None)
            before_figures = figures(_sum_counts(c for _, c in queries.counts(conn, Scope(run_ids=ids))))
        footnotes = _footnotes(conn, scope, runs)
    totals = figures(counts)
    assert totals.counts is not None
    delivered = totals.counts["delivered"]
    reach_figures: dict[str, float | int | None] = {
        "reach": reach["reach"],
        "engaged_reach": reach["engaged_reach"],
        "dormant": reach["reach"] - reach["engaged_reach"],
        "dormant_share": (reach["reach"] - reach["engaged_reach"]) / reach["reach"]
        if reach["reach"]
        else None,
        "messages_per_contact_per_week": delivered / reach["reach"] / period.weeks
        if reach["reach"]
        else None,
    }
    report = PeriodReport(
        period=period,
        compare=other,
        by={"campaign": "campaign", "recipient": "recipient department", "sender": "sender department"}[by],
        totals=totals,
        reach=reach_figures,
        rows=rows,
        before=before_figures,
        deltas=_deltas(totals, before_figures) if before_figures else [],
        footnotes=footnotes,
    )
    report.recommendations.extend(period_rules(report, settings.reports.rules))
    return report


def people(engine: Engine, settings: Settings, run_id: int) -> list[dict[str, Any]]:
    """Who received RUN_ID and what each did: only in [reports] mode = "individual"."""
    if settings.reports.mode != "individual":
        raise ReportError(
            'per-person output needs [reports] mode = "individual" '
            f"(this workspace is {settings.reports.mode})"
        )
    with engine.connect() as conn:
        _run(conn, run_id)
        return list(queries.people(conn, run_id))
