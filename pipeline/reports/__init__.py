"""Reports: trustworthy engagement figures per run, campaign, department and period, with recommendations.

    glossary.py  every metric's formula, once; Wilson intervals, z-tests, p-chart limits
    queries.py   the aggregate SQL (SQLite and PostgreSQL)
    periods.py   2027-Q1, 2027-03, last-30d
    views.py     run / campaign / period (and departments) reports as plain data
    ab.py        a run's A/B test and decision as shown (small arms suppressed), the list of tests
    rules.py     recommendations with evidence and thresholds
    render.py    text, JSON, CSV;  html.py  a self-contained page
    executive.py the exec report as data (KPIs, departments, campaigns, notes): exec_report()
    goals.py     targets from reports/goals.toml;  notes.py  reports/notes/PERIOD.md and the A/B log
    charts.py    its SVG charts (matplotlib, imported only when drawing)
    exec_render.py  its HTML (templates/reports/exec.html), PDF (WeasyPrint), CSV and JSON:
                    exec_files() (named, made on demand), write_exec()

May import: runs and everything below it (reports sit above runs, below cli and service).
"""

from pipeline.reports.exec_render import exec_files, exec_html, exec_json, exec_pdf, exec_tables, write_exec
from pipeline.reports.executive import ExecReport, exec_report
from pipeline.reports.glossary import METRICS, Rate, rates, wilson
from pipeline.reports.periods import Period, parse_period
from pipeline.reports.views import (
    CampaignReport,
    PeriodReport,
    RunReport,
    campaign_report,
    people,
    period_report,
    run_report,
)

__all__ = [
    "METRICS",
    "ExecReport",
    "CampaignReport",
    "Period",
    "PeriodReport",
    "Rate",
    "RunReport",
    "campaign_report",
    "exec_files",
    "exec_html",
    "exec_json",
    "exec_pdf",
    "exec_report",
    "exec_tables",
    "parse_period",
    "people",
    "period_report",
    "rates",
    "run_report",
    "wilson",
    "write_exec",
]
