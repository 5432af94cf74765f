"""A report view as one self-contained HTML page: inline CSS and SVG charts, no JavaScript, no network.

Colours and fonts come from [brand] in comms.toml, so the page looks like the company's own.
Everything from the database (URLs, subjects, department names) is autoescaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from pipeline.reports.ab import arm_rate
from pipeline.reports.glossary import METRICS
from pipeline.reports.render import Report, pct, to_data
from pipeline.reports.views import CampaignReport, PeriodReport, RunReport
from pipeline.workspace.settings import Settings

# The page and its sections (sections.html.j2: macros the studio's pages use too); package data.
TEMPLATES = Path(__file__).parent
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True)
)
_ENV.filters["pct"] = pct


def _funnel(counts: dict[str, int] | None) -> list[dict[str, Any]]:
    if not counts:
        return []
    steps = [
        ("Attempted", counts["attempted"]),
        ("Delivered", counts["delivered"]),
        ("Opened (inferred)", counts["inferred_openers"]),
        ("Clicked (human)", counts["clickers"]),
    ]
    top = max(counts["attempted"], 1)
    return [{"label": label, "count": count, "width": round(400 * count / top, 1)} for label, count in steps]


def _rows(rows: list[Any], head: str) -> dict[str, Any]:
    body = []
    for row in rows:
        f = row.figures
        if f.counts is None:
            body.append([row.label, "suppressed (fewer than min_cell)", "", "", ""])
        else:
            r = f.rates
            body.append(
                [
                    row.label,
                    str(f.counts["delivered"]),
                    pct(r["human_open_rate"]),
                    pct(r["human_click_rate"]),
                    pct(r["unsubscribe_rate"]),
                ]
            )
    return {
        "title": head,
        "head": [head, "Delivered", "Human open rate", "Human click rate", "Unsubscribe rate"],
        "rows": body,
    }


def _curve_chart(report: RunReport, colour: str) -> dict[str, Any]:
    hours = list(report.curve)
    xs = [40 + 580 * (i + 1) / len(hours) for i in range(len(hours))]
    values = [report.curve[h].value or 0.0 for h in hours]
    points = " ".join(
        f"{x:.1f},{210 - 200 * v:.1f}" for x, v in zip([40.0, *xs], [0.0, *values], strict=True)
    )
    return {
        "title": "Engagement curve",
        "top": "100%",
        "lines": [{"points": points, "colour": colour, "dashed": False}],
        "dots": [
            {"x": x, "y": 210 - 200 * v, "colour": colour, "label": f"{h}: {v * 100:.0f}%"}
            for x, v, h in zip(xs, values, hours, strict=True)
        ],
        "ticks": [{"x": x, "label": h} for x, h in zip(xs, hours, strict=True)],
    }


def _p_chart(report: CampaignReport, colours: dict[str, str]) -> dict[str, Any]:
    points = report.points
    top = max([p.upper or 0 for p in points] + [p.p or 0 for p in points] + [0.01])
    xs = [40 + 580 * (i + 0.5) / max(len(points), 1) for i in range(len(points))]

    def y(v: float) -> float:
        return 210 - 200 * v / top

    def line(values: list[float | None], colour: str, dashed: bool) -> dict[str, Any]:
        return {
            "points": " ".join(f"{x:.1f},{y(v or 0):.1f}" for x, v in zip(xs, values, strict=True)),
            "colour": colour,
            "dashed": dashed,
        }

    return {
        "title": "Human click rate per run (p-chart)",
        "top": f"{top * 100:.1f}%",
        "lines": [
            line([p.lower for p in points], colours["muted"], True),
            line([p.upper for p in points], colours["muted"], True),
            line([report.p_bar for _ in points], colours["muted"], False),
        ],
        "dots": [
            {
                "x": x,
                "y": y(p.p or 0),
                "colour": colours["accent"] if p.outside else colours["primary"],
                "label": f"run {p.run_id}: {(p.p or 0) * 100:.2f}%",
            }
            for x, p in zip(xs, points, strict=True)
        ],
        "ticks": [{"x": x, "label": f"run {p.run_id}"} for x, p in zip(xs, points, strict=True)],
    }


def ab_table(decision: dict[str, Any]) -> dict[str, Any]:
    """A decided A/B test: each arm's figures under the decision and its reason (the rule is in text);
    an arm suppressed in aggregate mode (reports.ab) shows as such."""
    rows = [
        [arm["variant"], "suppressed (fewer than min_cell)", "", "", "", "", ""]
        if arm.get("suppressed")
        else [
            arm["variant"],
            str(arm["n"]),
            pct(arm_rate(arm)),
            f"{arm['p_best']:.3f}",
            f"{arm['expected_loss']:.4f}",
            f"{arm['unsubscribe_rate']:.2%}",
            f"{arm['complaint_rate']:.2%}",
        ]
        for arm in decision["arms"]
    ]
    return {
        "title": f"A/B test: {decision['winner']} ({decision['chosen_by']}): {decision['reason']}",
        "head": [
            "Variant",
            "Delivered",
            f"{decision['metric_label']} (95% interval)",
            "P(best)",
            "Expected loss",
            "Unsubscribe rate",
            "Complaint rate",
        ],
        "rows": rows,
    }


def palette(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(colours, fonts) of every report page: [brand] over defaults that pass the contrast rules."""
    colours = {
        "primary": "#1F4E79",
        "accent": "#E07A1F",
        "text": "#1D2430",
        "muted": "#5B6675",
        "background": "#F2F4F7",
        "surface": "#FFFFFF",
        **settings.brand.colors,
    }
    fonts = {"body": "Helvetica, Arial, sans-serif", "heading": "Georgia, serif", **settings.brand.fonts}
    return colours, fonts


def page_context(report: Report, settings: Settings) -> dict[str, Any]:
    """What the page's sections show of REPORT: the HTML report and the studio render the same."""
    brand = settings.brand
    colours, fonts = palette(settings)
    context: dict[str, Any] = {
        "brand": brand,
        "colors": colours,
        "fonts": fonts,
        "metrics": METRICS,
        "links": None,
        "chart": None,
        "tables": [],
        "funnel": [],
        "rates": {},
    }
    context["footnotes"] = report.footnotes
    context["recommendations"] = getattr(report, "recommendations", [])
    if isinstance(report, RunReport):
        context |= {
            "title": f"Run {report.run_id}: {report.campaign}",
            "subtitle": f"{report.department} · {report.audience} · {report.subject}",
            "funnel": _funnel(report.figures.counts),
            "rates": report.figures.rates,
            "links": report.links,
            "chart": _curve_chart(report, colours["primary"]),
            "tables": [_rows(report.departments, "Department")],
        }
        reasons = [
            [kind, reason or "-", str(n)]
            for kind, found in report.reasons.items()
            for reason, n in sorted(found.items())
        ]
        context["tables"].append(
            {"title": "Reasons", "head": ["Kind", "Reason", "Messages"], "rows": reasons}
        )
        decision = (report.ab or {}).get("decision")
        if decision is not None:
            context["tables"].insert(0, ab_table(decision))
    elif isinstance(report, CampaignReport):
        context |= {
            "title": f"Campaign {report.name}",
            "subtitle": f"{len(report.points)} tracked runs",
            "chart": _p_chart(report, colours),
        }
        body = [
            [
                str(p.run_id),
                p.started_at.strftime("%Y-%m-%d") if p.started_at else "-",
                p.subject,
                pct(p.figures.rates["human_click_rate"]),
                pct(p.figures.rates["unsubscribe_rate"]),
                p.outside or "within",
            ]
            for p in report.points
        ]
        context["tables"] = [
            {
                "title": "Runs",
                "head": [
                    "Run",
                    "Started",
                    "Subject",
                    "Human click rate",
                    "Unsubscribe rate",
                    "Control limits",
                ],
                "rows": body,
            }
        ]
    else:
        assert isinstance(report, PeriodReport)
        compare = f" compared with {report.compare.label}" if report.compare else ""
        context |= {
            "title": f"Period {report.period.label}",
            "subtitle": f"{report.period.start:%Y-%m-%d} to {report.period.end:%Y-%m-%d}{compare}",
            "funnel": _funnel(report.totals.counts),
            "rates": report.totals.rates,
            "tables": [_rows(report.rows, report.by.capitalize())],
        }
        reach = to_data(report.reach)
        context["tables"].append(
            {"title": "Reach", "head": list(reach), "rows": [[str(v) for v in reach.values()]]}
        )
        if report.deltas:
            deltas = [
                [
                    d.metric,
                    pct(d.current),
                    pct(d.before),
                    f"{d.z:+.2f}" if d.z is not None else "-",
                    "significant" if d.significant else "",
                ]
                for d in report.deltas
            ]
            context["tables"].append(
                {"title": "Change", "head": ["Metric", "Now", "Before", "z", ""], "rows": deltas}
            )
    return context


def to_html(report: Report, settings: Settings) -> str:
    return _ENV.get_template("report.html.j2").render(**page_context(report, settings))
