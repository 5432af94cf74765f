"""The exec report written out: one self-contained HTML page, a PDF of it, a CSV per table, JSON of all.

The page is the workspace's Jinja template templates/reports/exec.html (the sample ships one;
a workspace without it gets the sample's), rendered in the same immutable sandbox as layouts,
autoescaped, with the report's data and its charts and nothing else: no settings object, only
the [brand] names. The same report gives the same bytes in every format (charts: see
pipeline.reports.charts; PDF: see exec_pdf).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from pipeline.assembly.names import NamedUndefined, Sandbox
from pipeline.audience.exporter import writer
from pipeline.errors import ReportError
from pipeline.reports import charts
from pipeline.reports.executive import DEPARTMENT_RATES, ExecReport, Kpi
from pipeline.reports.glossary import METRICS, Rate
from pipeline.reports.html import palette
from pipeline.reports.render import pct, to_data
from pipeline.workspace.folders import Workspace
from pipeline.workspace.init import sample_root

TEMPLATE = "templates/reports/exec.html"
FORMATS = ("html", "pdf", "csv", "json")


def _points(change: float | None) -> str:
    """A change of a rate in percentage points: +0.4 pp."""
    return "-" if change is None else f"{change * 100:+.1f} pp"


def _figure(kind: str, value: float | None) -> str:
    """A KPI's value as a tile shows it: 6.2%, 0.18%, 1,204, 0.29."""
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value * 100:.{2 if value < 0.01 else 1}f}%"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _number(kpi: Kpi) -> str:
    return _figure(kpi.kind, kpi.value)


def _kpi_change(kpi: Kpi) -> str:
    if kpi.change is None:
        return "-"
    if kpi.kind == "rate":
        return _points(kpi.change)
    if kpi.kind == "count":
        relative = f" ({kpi.change / kpi.before * 100:+.0f}%)" if kpi.before else ""
        return f"{kpi.change:+,.0f}{relative}"
    return f"{kpi.change:+.2f}"


def kpi_lines(report: ExecReport) -> list[str]:
    """One line per KPI tile, as the page shows it: for a mail's text part, a log, a terminal."""
    before = f" vs {report.compare.label}" if report.compare else ""
    return [
        f"{k.label}: {_number(k)} ({_kpi_change(k)}{before}; {k.status})"
        if k.change is not None
        else f"{k.label}: {_number(k)} ({k.status})"
        for k in report.kpis
    ]


def _template(ws: Workspace) -> tuple[str, str]:
    """(text, path shown in errors) of the workspace's exec template, else the sample's."""
    for root in (ws.root, sample_root()):
        path = root / TEMPLATE
        if path.is_file():
            if root == ws.root:
                ws.inside(path)
            return path.read_text(encoding="utf-8"), TEMPLATE if root == ws.root else f"(sample) {TEMPLATE}"
    raise ReportError(f"no {TEMPLATE} in the workspace or the sample")


def report_charts(report: ExecReport, colours: dict[str, str]) -> dict[str, charts.Chart]:
    """Every chart of the page, by the name the template uses."""
    out: dict[str, charts.Chart] = {}
    for kpi in report.kpis:
        out[f"spark_{kpi.id}"] = charts.sparkline(
            f"spark-{kpi.id}",
            f"{kpi.label}, last {len(kpi.trend)} periods",
            [p.period for p in kpi.trend],
            [p.value for p in kpi.trend],
            [_figure(kpi.kind, p.value) for p in kpi.trend],
            colours,
        )
    for by in ("sender", "recipient"):
        rows = [
            (row.department, rate.value, rate.low, rate.high)
            for row in report.departments[by]
            if (rate := row.rates["human_click_rate"]) is not None
            and rate.value is not None
            and rate.low is not None
            and rate.high is not None
        ]
        out[f"departments_{by}"] = charts.dot_plot(
            f"departments-{by}", f"Human click rate by {by} department, with 95% intervals", rows, colours
        )
    out["curve"] = charts.curve(
        "curve",
        "Engagement curve: share of clickers who had clicked by then",
        [(label, rate.value) for label, rate in report.curve.items()],
        colours,
    )
    out["volume"] = charts.volume(
        "volume",
        "Messages delivered and unsubscribes per week",
        [(w.start.isoformat(), w.delivered, w.unsubscribes) for w in report.weeks],
        colours,
    )
    return out


def exec_html(report: ExecReport, ws: Workspace) -> str:
    """The report as one self-contained HTML page from the workspace's template."""
    settings = ws.settings
    colours, fonts = palette(settings)
    source, shown = _template(ws)
    env = Sandbox(autoescape=True, undefined=NamedUndefined)
    env.filters |= {
        "pct": pct,
        "pp": _points,
        "number": _number,
        "change": _kpi_change,
    }
    context: dict[str, Any] = {
        "report": report,
        "charts": report_charts(report, colours),
        "colors": colours,
        "fonts": fonts,
        "brand": {"company": settings.brand.company, "website": settings.brand.website},
        "metrics": METRICS,
        "kpi_ids": [k.id for k in report.kpis],
        "labels": {m.id: m.label for m in METRICS},
        "min_cell": settings.reports.min_cell,
    }
    try:
        html = env.from_string(source).render(context)
    except TemplateSyntaxError as exc:
        raise ReportError(exc.message or "template syntax error", path=shown, line=exc.lineno) from None
    except TemplateError as exc:
        raise ReportError(str(exc), path=shown) from None
    return html


def accessibility_findings(report: ExecReport, ws: Workspace) -> list[str]:
    """The accessibility rules of `comms check` on the page, each finding as one line."""
    from pipeline.checks.page import check_page

    return [
        f"{hit.rule.id}: {hit.message}" for hit in check_page(ws, exec_html(report, ws), ws.root / TEMPLATE)
    ]


def exec_pdf(html: str) -> bytes:
    """HTML as a PDF (WeasyPrint, imported only here). The page has no dcterms.created or modified
    meta, so the PDF has no dates; its identifier is derived from its content: the same page
    gives the same bytes."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns of CSS it ignores (@media...)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = HTML(string=html, base_url=None)
    out = document.write_pdf()
    assert out is not None
    return bytes(out)


Cell = str | int | float


def _rate_cells(rate: Rate | None) -> list[Cell]:
    if rate is None:
        return ["", "", "", "", ""]
    return [_cell(rate.value), _cell(rate.low), _cell(rate.high), rate.k, rate.n]


def _csv(head: list[str], rows: Iterable[list[Cell]]) -> str:
    out = io.StringIO()
    table = writer(out)
    table.writerow(head)
    for row in rows:
        table.writerow(row)
    return out.getvalue()


def _cell(value: float | None) -> Cell:
    """A figure rounded to 6 places (a rate to 0.0001 pp), or an empty cell when there is none."""
    return "" if value is None else round(value, 6)


def exec_tables(report: ExecReport) -> dict[str, str]:
    """A CSV per table of the page, by file name suffix (kpis, departments, campaigns, weeks)."""
    kpis = _csv(
        ["kpi", "label", "value", "before", "change", "z", "significant", "target", "status"],
        [
            [
                k.id,
                k.label,
                _cell(k.value),
                _cell(k.before),
                _cell(k.change),
                _cell(k.z),
                str(k.significant).lower(),
                k.target or "",
                k.status,
            ]
            for k in report.kpis
        ],
    )
    head = ["by", "department", "suppressed", "delivered", "engaged_reach"]
    for metric in DEPARTMENT_RATES:
        head += [f"{metric}{part}" for part in ("", "_low", "_high", "_k", "_n")]
        head += [f"{metric}_change", f"{metric}_status"]
    rows: list[list[Cell]] = []
    for by, found in report.departments.items():
        for row in found:
            cells: list[Cell] = [by, row.department, str(row.suppressed).lower()]
            if row.suppressed:
                rows.append(cells + [""] * (len(head) - len(cells)))
                continue
            cells += [row.delivered or 0, row.engaged_reach or 0]
            for metric in DEPARTMENT_RATES:
                cells += [*_rate_cells(row.rates[metric]), _cell(row.changes[metric]), row.status[metric]]
            rows.append(cells)
    departments = _csv(head, rows)
    campaigns = _csv(
        ["rank", "campaign", "delivered", "human_click_rate", "low", "high", "k", "n"],
        [
            [rank, row.campaign, row.delivered, *_rate_cells(row.human_click_rate)]
            for rank, rows_ in (("top", report.top), ("bottom", report.bottom))
            for row in rows_
        ],
    )
    weeks = _csv(
        ["week", "delivered", "unsubscribes"],
        [[w.start.isoformat(), w.delivered, w.unsubscribes] for w in report.weeks],
    )
    return {"kpis": kpis, "departments": departments, "campaigns": campaigns, "weeks": weeks}


def exec_json(report: ExecReport) -> str:
    """Every number of the report (and its notes) as JSON; Markup is written as its HTML text."""
    return json.dumps(to_data(report), indent=2, ensure_ascii=False, default=str) + "\n"


def exec_files(
    report: ExecReport, ws: Workspace, formats: Iterable[str] = FORMATS
) -> dict[str, Callable[[], bytes]]:
    """The files of the chosen FORMATS by the names write_exec gives them (exec-PERIOD.html,
    exec-PERIOD-kpis.csv...), in that order, each made only when called: the studio lists them
    and serves one, write_exec writes them all. The HTML is rendered once for both HTML and PDF."""
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ReportError(f"unknown format {unknown[0]!r}: use {', '.join(FORMATS)}")
    stem = f"exec-{report.period.label}"
    html = functools.cache(lambda: exec_html(report, ws))
    files: dict[str, Callable[[], bytes]] = {}
    for fmt in wanted:
        if fmt == "html":
            files[f"{stem}.html"] = lambda: html().encode()
        elif fmt == "pdf":
            files[f"{stem}.pdf"] = lambda: exec_pdf(html())
        elif fmt == "json":
            files[f"{stem}.json"] = lambda: exec_json(report).encode()
        else:
            for name, text in exec_tables(report).items():
                files[f"{stem}-{name}.csv"] = functools.partial(text.encode)
    return files


def write_exec(report: ExecReport, ws: Workspace, out: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write the chosen FORMATS of REPORT into the folder OUT as exec-PERIOD.*; the paths written."""
    files = exec_files(report, ws, formats)
    out.mkdir(parents=True, exist_ok=True)
    return [_write(out / name, make()) for name, make in files.items()]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


__all__ = ["FORMATS", "exec_files", "exec_html", "exec_json", "exec_pdf", "exec_tables", "write_exec"]
