"""Report views as text, JSON and CSV (HTML is pipeline.reports.html): formatting only, no figures.

JSON and CSV carry every number the views hold (CSV as one `key,value` row per number, the key a
dotted path like `figures.rates.human_click_rate.low`), so a script or a spreadsheet gets what the
screen shows and more.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from pipeline.audience.exporter import writer
from pipeline.reports.ab import arm_rate
from pipeline.reports.glossary import METRICS, Rate
from pipeline.reports.views import CampaignReport, Figures, PeriodReport, Row, RunReport

Report = RunReport | CampaignReport | PeriodReport


def to_data(report: Any) -> Any:
    """REPORT as JSON-ready plain data (dicts, lists, numbers, strings; dates and times as ISO 8601)."""
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return {f.name: to_data(getattr(report, f.name)) for f in dataclasses.fields(report)}
    if isinstance(report, dict):
        return {str(k): to_data(v) for k, v in report.items()}
    if isinstance(report, list | tuple):
        return [to_data(v) for v in report]
    if isinstance(report, date):  # datetimes too
        return report.isoformat()
    return report


def to_json(report: object) -> str:
    return json.dumps(to_data(report), indent=2, ensure_ascii=False) + "\n"


def _leaves(data: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _leaves(value, f"{path}.{i}")
    else:
        yield path, data


def to_csv(report: Report) -> str:
    out = io.StringIO()
    rows = writer(out)
    rows.writerow(["key", "value"])
    for key, value in _leaves(to_data(report), ""):
        rows.writerow([key, "" if value is None else str(value)])
    return out.getvalue()


# -- text ------------------------------------------------------------------------------------------


def pct(rate: Rate | None) -> str:
    """A rate as "12.3% (9.1-16.2%)"; "-" when it has no denominator or does not apply."""
    if rate is None or rate.value is None or rate.low is None or rate.high is None:
        return "-"
    return f"{rate.value * 100:.1f}% ({rate.low * 100:.1f}-{rate.high * 100:.1f}%)"


_FUNNEL = ("attempted", "accepted", "delivered", "inferred_openers", "clickers")


def _figures_lines(shown: Figures) -> list[str]:
    if shown.counts is None:
        return ["  (suppressed: fewer recipients than [reports] min_cell)"]
    c = shown.counts
    lines = ["  funnel  " + "  ->  ".join(f"{name.replace('_', ' ')} {c[name]}" for name in _FUNNEL)]
    lines.append(
        f"  snapshotted {c['snapshotted']}, rejected {c['rejected']}, bounced {c['bounced']} "
        f"(hard {c['hard_bounced']}, soft {c['soft_bounced']}), complaints {c['complaints']}, "
        f"unsubscribes {c['unsubscribes']}"
    )
    for metric in METRICS:
        lines.append(f"  {metric.label:<30} {pct(shown.rates.get(metric.id))}")
    if shown.estimated_openers is not None:
        lines.append(f"  {'Estimated opens (Brevo)':<30} {shown.estimated_openers:.0f}")
    return lines


def _row_table(rows: list[Row], label: str) -> list[str]:
    out = [f"  {label:<24} {'D':>7} {'human open':>24} {'human click':>24} {'unsubscribe':>24}"]
    for row in rows:
        f = row.figures
        if f.counts is None:
            out.append(f"  {row.label:<24} {'suppressed (< min_cell)':>24}")
            continue
        r = f.rates
        out.append(
            f"  {row.label:<24} {f.counts['delivered']:>7} {pct(r['human_open_rate']):>24} "
            f"{pct(r['human_click_rate']):>24} {pct(r['unsubscribe_rate']):>24}"
        )
    return out


def _recommendations(items: list[Any]) -> list[str]:
    out = ["recommendations"]
    for item in items:
        mark = {"fired": "!", "ok": "ok", "insufficient": "?"}[item.status]
        action = f" -> {item.action}" if item.action else ""
        out.append(f"  [{mark}] {item.rule}: {item.evidence} (threshold {item.threshold}){action}")
    return out


def to_text(report: Report) -> str:
    lines: list[str] = []
    if isinstance(report, RunReport):
        when = report.started_at.strftime("%Y-%m-%d %H:%M UTC") if report.started_at else "not started"
        lines += [
            f"run {report.run_id}  {report.campaign} ({report.department}) -> {report.audience}, {when}"
        ]
        lines += [f"subject: {report.subject}", *_figures_lines(report.figures)]
        if report.first_click_median_s is not None:
            p75 = report.first_click_p75_s or 0
            lines.append(
                f"  time to first human click: median {report.first_click_median_s / 60:.0f} min, "
                f"p75 {p75 / 60:.0f} min"
            )
        lines.append("  engagement curve: " + ", ".join(f"{k} {pct(v)}" for k, v in report.curve.items()))
        lines.append("links")
        for link in report.links:
            cta = " (cta)" if link.cta else ""
            lines.append(
                f"  {link.position:>2}. {link.url}{cta}: {link.clickers} clickers ({link.raw_clickers} raw), "
                f"CTR {pct(link.ctr)}, share {pct(link.share)}"
            )
        if report.ab is not None:
            lines += ab_lines(report.ab)
        lines += ["departments", *_row_table(report.departments, "department")]
        lines.append("reasons")
        for kind, found in report.reasons.items():
            if found:
                lines.append(f"  {kind}: " + ", ".join(f"{k or '-'} {v}" for k, v in sorted(found.items())))
        lines += _recommendations(report.recommendations)
    elif isinstance(report, CampaignReport):
        p_bar = f"{report.p_bar * 100:.2f}%" if report.p_bar is not None else "-"
        lines.append(
            f"campaign {report.name}: {len(report.points)} tracked runs, mean human click rate {p_bar}"
        )
        for point in report.points:
            when = point.started_at.strftime("%Y-%m-%d") if point.started_at else "-"
            limits = (
                f"[{point.lower * 100:.2f}%, {point.upper * 100:.2f}%]"
                if point.lower is not None and point.upper is not None
                else "-"
            )
            flag = f"  {point.outside.upper()} LIMIT" if point.outside else ""
            r = point.figures.rates
            lines.append(
                f"  run {point.run_id} {when}  click {pct(r['human_click_rate'])} limits {limits}  "
                f"unsubscribe {pct(r['unsubscribe_rate'])}  {point.subject}{flag}"
            )
    else:
        compare = f" compared with {report.compare.label}" if report.compare else ""
        lines.append(
            f"period {report.period.label} "
            f"({report.period.start:%Y-%m-%d} to {report.period.end:%Y-%m-%d}){compare}"
        )
        lines += _figures_lines(report.totals)
        reach = report.reach
        lines.append(
            f"  reach {reach['reach']}, engaged {reach['engaged_reach']}, dormant {reach['dormant']}, "
            f"messages per contact per week {_num(reach['messages_per_contact_per_week'])}"
        )
        for delta in report.deltas:
            if delta.current and delta.before and delta.z is not None:
                flag = " significant" + (" (worse)" if delta.worse else "") if delta.significant else ""
                lines.append(
                    f"  {delta.metric}: {pct(delta.current)} vs {pct(delta.before)}, z {delta.z:+.2f}{flag}"
                )
        lines += [f"by {report.by}", *_row_table(report.rows, report.by)]
        lines += _recommendations(report.recommendations)
    lines.append("notes")
    lines += [f"  * {note}" for note in report.footnotes]
    return "\n".join(lines) + "\n"


_LABELS = {metric.id: metric.label for metric in METRICS}


def ab_lines(ab: dict[str, Any]) -> list[str]:
    """A run's A/B test (Run.meta["ab"] without its templates), as `comms report run` and
    `comms ab decide` print it: the test, then each arm's figures, the decision and the rule."""
    test = ab["test"]
    guard = test["guardrails"]
    metric = _LABELS[test["metric"]].lower()
    lines = [
        f"A/B test: {' vs '.join(ab['variants'])} (control {ab['control']}), {metric}, "
        f"smallest lift +{test['lift'] * 100:.1f} points, guardrails unsubscribe "
        f"{guard['unsubscribe_rate']:.2%}, complaint {guard['complaint_rate']:.2%}"
    ]
    decision = ab.get("decision")
    if decision is None:
        when = ab.get("decide_at", "")[:16].replace("T", " ")
        return [*lines, f"  not decided yet{f': the daemon decides at {when} UTC' if when else ''}"]
    lines.append(
        f"  decided {decision['decided_at'][:16].replace('T', ' ')} UTC ({decision['chosen_by']}): "
        f"winner {decision['winner']}, {decision['released']} released to it: {decision['reason']}"
    )
    lines.append(
        f"  minimum {decision['needed_per_arm']} per arm (baseline {decision['baseline']:.1%}, "
        f"{decision['baseline_source']})"
    )
    for arm in decision["arms"]:
        if arm.get("suppressed"):
            lines.append(f"  {arm['variant']:<16} suppressed (fewer than [reports] min_cell recipients)")
            continue
        lines.append(
            f"  {arm['variant']:<16} n={arm['n']:<6} {pct(arm_rate(arm)):<20}  P(best) {arm['p_best']:.3f}  "
            f"expected loss {arm['expected_loss']:.4f}  unsubscribes {arm['unsubscribe_rate']:.1%}  "
            f"complaints {arm['complaint_rate']:.1%}"
        )
    lines.append(f"  rule: {decision['rule']}")
    return lines


def _num(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.2f}"
