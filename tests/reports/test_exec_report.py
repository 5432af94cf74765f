"""The exec report over two seeded quarters: KPI values and deltas (JSON), departments (CSV), notes,
A/B learnings and recommendations (HTML), goals, privacy, the PDF, and the same bytes twice."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import lxml.html
import pytest
from sqlalchemy import Engine

from pipeline.errors import ReportError
from pipeline.reports import exec_report, parse_period, wilson, write_exec
from pipeline.reports.exec_render import accessibility_findings, exec_html, exec_json, exec_tables
from pipeline.reports.glossary import two_proportion_z
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings
from tests.conftest import sqlite_only
from tests.reports.conftest import NOW, seed_two_quarters
from tests.support.cli import comms


@pytest.fixture
def ws(workspace_dir: Path, settings: Settings) -> Workspace:
    settings.reports.rules.min_delivered = 50  # small enough for the dormant-contacts rule to judge
    return Workspace.with_settings(workspace_dir, settings)


def write(ws: Workspace, relative: str, text: str) -> None:
    path = ws.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_kpis_and_their_changes_in_the_json(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    data = json.loads(exec_json(exec_report(engine, ws, parse_period("2027-Q1", NOW))))
    assert data["period"]["label"] == "2027-Q1" and data["compare"]["label"] == "2026-Q4"
    kpis = {k["id"]: k for k in data["kpis"]}
    click = kpis["human_click_rate"]
    assert (click["rate"]["k"], click["rate"]["n"]) == (22, 140)
    assert click["value"] == pytest.approx(22 / 140) and click["before"] == pytest.approx(10 / 100)
    assert click["change"] == pytest.approx(22 / 140 - 0.1)
    assert click["z"] == pytest.approx(two_proportion_z(22, 140, 10, 100))
    assert click["rate"]["low"] == pytest.approx(wilson(22, 140).low)
    assert kpis["unsubscribe_rate"]["value"] == pytest.approx(2 / 140)
    assert kpis["unsubscribe_rate"]["before"] == pytest.approx(1 / 100)
    assert (kpis["engaged_reach"]["value"], kpis["engaged_reach"]["change"]) == (22, 12)
    assert (kpis["campaigns_sent"]["value"], kpis["campaigns_sent"]["before"]) == (2, 1)
    assert kpis["delivery_rate"]["value"] == 1.0 and kpis["complaint_rate"]["value"] == 0.0
    # 140 messages to 100 people over the 90 days of 2027-Q1.
    assert kpis["messages_per_contact_per_week"]["value"] == pytest.approx(140 / 100 / (90 / 7))
    # Six periods of trend, oldest first; before 2026-Q4 there was nothing.
    trend = [(p["period"], p["value"]) for p in click["trend"]]
    assert [p for p, _ in trend] == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"]
    assert trend[:4] == [(p, None) for p, _ in trend[:4]]
    assert trend[4][1] == pytest.approx(0.1) and trend[5][1] == pytest.approx(22 / 140)
    # Top campaigns by human click rate, with n and interval.
    assert [(c["campaign"], c["delivered"]) for c in data["top"]] == [("alpha", 100), ("beta", 40)]
    assert data["top"][0]["human_click_rate"]["high"] == pytest.approx(wilson(20, 100).high)
    # The engagement curve pools the period's first human clicks (all 30 minutes after sending).
    assert data["curve"]["1h"]["value"] == 1.0


def test_year_over_year_compares_with_the_same_quarter_a_year_before(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    report = exec_report(engine, ws, parse_period("2027-Q1", NOW), compare="yoy")
    assert report.compare is not None and report.compare.label == "2026-Q1"
    click = next(k for k in report.kpis if k.id == "human_click_rate")
    assert click.before is None and click.change is None


def test_the_department_tables_in_the_csv(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    tables = exec_tables(exec_report(engine, ws, parse_period("2027-Q1", NOW)))
    rows = {(r["by"], r["department"]): r for r in csv.DictReader(io.StringIO(tables["departments"]))}
    assert set(rows) == {
        ("sender", "finance"),
        ("sender", "sales"),
        ("recipient", "finance"),
        ("recipient", "sales"),
    }
    sales = rows["sender", "sales"]
    assert (sales["delivered"], sales["engaged_reach"]) == ("100", "20")
    assert float(sales["human_click_rate"]) == pytest.approx(0.2)
    assert float(sales["human_click_rate_change"]) == pytest.approx(0.1)
    assert float(sales["human_click_rate_low"]) == pytest.approx(wilson(20, 100).low, abs=1e-6)
    assert rows["sender", "finance"]["human_click_rate_change"] == ""  # finance sent nothing in 2026-Q4
    finance = rows["recipient", "finance"]  # alpha and beta: 80 messages, 7 different people clicked
    assert (finance["delivered"], finance["engaged_reach"]) == ("80", "7")
    assert float(finance["human_click_rate_change"]) == pytest.approx(7 / 80 - 4 / 40)  # a negative number,
    assert not finance["human_click_rate_change"].startswith("'")  # not a formula to neutralise
    assert float(rows["recipient", "sales"]["unsubscribe_rate"]) == pytest.approx(2 / 60, abs=1e-6)
    kpis = list(csv.DictReader(io.StringIO(tables["kpis"])))
    assert [k["kpi"] for k in kpis][:3] == ["engaged_reach", "human_click_rate", "unsubscribe_rate"]


def test_aggregate_mode_suppresses_small_departments_in_every_format(
    ws: Workspace, settings: Settings, engine: Engine
) -> None:
    seed_two_quarters(engine, legal=3)
    settings.reports.mode = "aggregate"
    report = exec_report(engine, ws, parse_period("2027-Q1", NOW))
    legal = next(r for r in report.departments["recipient"] if r.department == "legal")
    assert legal.suppressed and legal.delivered is None and legal.rates["human_click_rate"] is None
    rows = {r["department"]: r for r in csv.DictReader(io.StringIO(exec_tables(report)["departments"]))}
    assert rows["legal"]["suppressed"] == "true" and rows["legal"]["delivered"] == ""
    assert "suppressed: fewer than 5 delivered" in exec_html(report, ws)
    legal_json = [
        r for r in json.loads(exec_json(report))["departments"]["recipient"] if r["department"] == "legal"
    ]
    assert legal_json[0]["engaged_reach"] is None


def test_notes_learnings_recommendations_and_goals_in_the_html(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    write(
        ws,
        "reports/notes/2027-Q1.md",
        "## What we learned\n\nStaff read the **safety** mail <script>alert(1)</script>.\n\n"
        "## Decisions needed\n\n- Approve a second sender domain\n",
    )
    write(
        ws,
        "reports/ab-log.md",
        "# A/B decisions\n\n- 2027-02-20 `alpha`: subject B beat A on human click rate (6.1% vs 4.0%)\n"
        "- 2026-12-01 `alpha`: send hour 9 vs 14, no difference\n",
    )
    write(
        ws,
        "reports/goals.toml",
        "[overall]\nhuman_click_rate = { min = 0.1 }\nmessages_per_contact_per_week = { max = 0.05 }\n"
        "[departments.sales]\nhuman_click_rate = { min = 0.3 }\n",
    )
    report = exec_report(engine, ws, parse_period("2027-Q1", NOW))
    html = exec_html(report, ws)
    assert "<h3>What we learned</h3>" in html and "<strong>safety</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<li>Approve a second sender domain</li>" in html
    assert "<code>alpha</code>: subject B beat A" in html and "send hour 9 vs 14" not in html  # 2026-Q4
    # 78 of the 100 people reached never opened or clicked: the dormant-contacts rule fires.
    dormant = next(r for r in report.recommendations if r.rule == "dormant-contacts")
    assert dormant.sources == ["period 2027-Q1"] and "78 of 100" in dormant.evidence[0]
    assert "<b>dormant-contacts</b> (warning; threshold &gt; 15.0% of contacts reached)" in html
    assert "Fired for period 2027-Q1: 78 of 100 contacts reached (78.0%) neither opened nor clicked" in html
    statuses = {k.id: k.status for k in report.kpis}
    assert statuses["human_click_rate"] == "met" and statuses["messages_per_contact_per_week"] == "missed"
    assert statuses["unsubscribe_rate"] == "no target"
    sales = next(r for r in report.departments["sender"] if r.department == "sales")
    assert sales.status["human_click_rate"] == "missed"  # 20%, its interval up to 29%: short of 30%
    assert accessibility_findings(report, ws) == []


# The numbers a chart's description reads out (15.7%, 140...), as its table may write them (9.1-16.2%).
_FIGURE = re.compile(r"\d+(?:\.\d+)?")


@sqlite_only
def test_every_chart_has_a_title_a_description_and_its_data_table(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    report = exec_report(engine, ws, parse_period("2027-Q1", NOW))
    page = lxml.html.document_fromstring(exec_html(report, ws))
    charts = list(page.iter("svg"))
    assert len(charts) == 7 + 2 + 2  # sparklines, department dot plots, curve and volume
    for svg in charts:
        [figure] = [a for a in svg.iterancestors() if a.tag == "figure"]
        title, desc = svg.findtext("title", "").strip(), svg.findtext("desc", "").strip()
        assert title and desc, svg.get("aria-labelledby")
        # aria-describedby names the table, or the table's row, that holds the chart's figures.
        [data] = [page.get_element_by_id(name) for name in figure.get("aria-describedby", "").split()]
        chart_id = svg.find("title").get("id").removesuffix("-title")
        assert (data.tag, data.get("id")) in (("table", f"{chart_id}-data"), ("tr", f"{chart_id}-data"))
        table = data if data.tag == "table" else next(a for a in data.iterancestors() if a.tag == "table")
        assert table.find(".//th") is not None, title
        # Every figure the description reads out ("sales: 20.0% (12.1% to 29.9%)") is in that table.
        figures = [n for item in desc.split("; ") for n in _FIGURE.findall(item.partition(": ")[2])]
        assert figures, title
        missing = [n for n in figures if n not in data.text_content()]
        assert missing == [], f"{title}: {missing} not in its table"
    dots = page.get_element_by_id("departments-sender-data")
    assert dots.getparent().find(".//figure[@aria-describedby='departments-sender-data']") is not None
    assert accessibility_findings(report, ws) == []


@sqlite_only
def test_a_chart_whose_template_drops_its_data_table_is_a_finding(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    report = exec_report(engine, ws, parse_period("2027-Q1", NOW))
    template = ws.root / "templates/reports/exec.html"
    source = template.read_text(encoding="utf-8")
    dropped = '<figure class="dots" aria-describedby="{{ chart.id }}-data">'
    assert dropped in source
    template.write_text(source.replace(dropped, '<figure class="dots">'), encoding="utf-8")
    findings = accessibility_findings(report, ws)
    assert findings == [
        f"accessibility.chart: chart 'Human click rate by {by} department, with 95% intervals': "
        "no aria-describedby naming the table of its data"
        for by in ("sender", "recipient")
    ]


@sqlite_only
def test_without_notes_or_a_log_the_page_says_where_to_write(ws: Workspace, engine: Engine) -> None:
    seed_two_quarters(engine)
    (ws.root / "reports/notes/2027-Q1.md").unlink()  # the sample's
    html = exec_html(exec_report(engine, ws, parse_period("2027-Q1", NOW)), ws)
    assert "No notes yet: write them in reports/notes/2027-Q1.md." in html
    assert 'id="learnings"' not in html


@sqlite_only
def test_a_bad_goals_file_is_one_line_naming_file_and_line(ws: Workspace, engine: Engine) -> None:
    write(
        ws, "reports/goals.toml", "[overall]\nhuman_click_rate = { min = 0.1 }\nopen_rate = { min = 0.2 }\n"
    )
    with pytest.raises(Exception, match=r"reports/goals.toml: unknown KPI 'open_rate'"):
        exec_report(engine, ws, parse_period("2027-Q1", NOW))
    write(ws, "reports/goals.toml", "[overall]\nhuman_click_rate = { min = 0.1, max = 0.2 }\n")
    with pytest.raises(Exception, match=r"reports/goals.toml:2: overall.human_click_rate: give either min"):
        exec_report(engine, ws, parse_period("2027-Q1", NOW))


@sqlite_only
def test_the_pdf_has_a_page_per_section_and_the_kpi_labels(
    ws: Workspace, engine: Engine, tmp_path: Path
) -> None:
    seed_two_quarters(engine)
    [pdf] = write_exec(exec_report(engine, ws, parse_period("2027-Q1", NOW)), ws, tmp_path, ["pdf"])
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           5" in info  # key figures, departments, campaigns, notes, appendix
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    first = " ".join(text.split())  # a label may wrap inside its tile
    for label in (
        "Engaged reach",
        "Human click rate",
        "Unsubscribe rate",
        "Delivery rate",
        "Complaint rate",
        "Messages per recipient per week",
        "Campaigns sent",
    ):
        assert label in first
    assert "15.7%" in first and "vs 2026-Q4" in first


def test_the_command_writes_the_same_bytes_twice(ws: Workspace, engine: Engine, database_url: str) -> None:
    seed_two_quarters(engine)
    env = {"COMMS_DATABASE_URL": database_url, "COMMS_SECRET": "test-secret-key-of-at-least-32-bytes"}
    outputs = []
    for folder in ("first", "second"):
        done = comms("report", "exec", "--period", "2027-Q1", "--out", folder, cwd=ws.root, env=env)
        assert done.returncode == 0, done.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted((ws.root / folder).iterdir())})
    assert sorted(outputs[0]) == [
        "exec-2027-Q1-campaigns.csv",
        "exec-2027-Q1-departments.csv",
        "exec-2027-Q1-kpis.csv",
        "exec-2027-Q1-weeks.csv",
        "exec-2027-Q1.html",
        "exec-2027-Q1.json",
        "exec-2027-Q1.pdf",
    ]
    assert outputs[0] == outputs[1]
    bad = comms("report", "exec", "--period", "2027-Q5", cwd=ws.root, env=env)
    assert bad.returncode == 1 and bad.stderr.startswith("comms: error: period '2027-Q5'")
    wrong = comms("report", "exec", "--period", "2027-Q1", "--format", "html,docx", cwd=ws.root, env=env)
    assert wrong.stderr == "comms: error: unknown format 'docx': use html, pdf, csv, json\n"


def test_demo_history_is_marked_in_the_report_and_removable(ws: Workspace, database_url: str) -> None:
    env = {"COMMS_DATABASE_URL": database_url, "COMMS_SECRET": "test-secret-key-of-at-least-32-bytes"}
    assert comms("db", "upgrade", cwd=ws.root, env=env).returncode == 0
    seeded = comms("demo", "seed-history", "--until", "2027-Q1", "--periods", "2", cwd=ws.root, env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("DEMO DATA written for 2026-Q4 to 2027-Q1: 600 contacts, 14 runs")
    again = comms("demo", "seed-history", cwd=ws.root, env=env)
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        "comms: error: the database already holds 14 demo runs: `comms demo seed-history --remove` first"
    ]
    built = comms(
        "report", "exec", "--period", "2027-Q1", "--format", "html", "--out", "out", cwd=ws.root, env=env
    )
    assert built.returncode == 0, built.stderr
    assert "Campaigns sent: 7 (+0 (+0%) vs 2026-Q4; no target)" in built.stdout  # the tiles, as lines
    page = (ws.root / "out" / "exec-2027-Q1.html").read_text(encoding="utf-8")
    assert "DEMO DATA: 7 runs of this period are synthetic (comms demo seed-history)" in page
    removed = comms("demo", "seed-history", "--remove", cwd=ws.root, env=env)
    assert removed.stdout.strip() == "removed 14 demo runs and the demo contacts"
    empty = comms(
        "report", "exec", "--period", "2027-Q1", "--format", "json", "--out", "out", cwd=ws.root, env=env
    )
    assert "Campaigns sent: 0 (+0 vs 2026-Q4; no target)" in empty.stdout


def test_at_risk_is_short_of_the_target_but_within_reach() -> None:
    from pipeline.reports.goals import Target, status

    click = wilson(22, 140)  # 15.7%, 95% interval 10.6% to 22.6%
    assert status(Target(min=0.15), click.value, click) == "met"
    assert status(Target(min=0.2), click.value, click) == "at risk"  # the interval reaches 20%
    assert status(Target(min=0.25), click.value, click) == "missed"
    assert status(Target(max=100, margin=0.1), 105) == "at risk" and status(Target(max=100), 111) == "missed"
    assert status(None, 0.5) == "no target" and status(Target(min=0.1), None) == "no data"


@sqlite_only
def test_the_workspace_template_is_sandboxed_and_its_errors_name_the_line(
    ws: Workspace, engine: Engine
) -> None:
    report = exec_report(engine, ws, parse_period("2027-Q1", NOW))
    write(ws, "templates/reports/exec.html", "<html>\n<body>\n{% if report %}\n</body>\n")
    with pytest.raises(ReportError, match=r"^templates/reports/exec.html:3: Unexpected end of template"):
        exec_html(report, ws)
    write(ws, "templates/reports/exec.html", "<html>{{ report.__class__.__mro__ }}</html>")
    with pytest.raises(ReportError, match=r"^templates/reports/exec.html: access to attribute '__class__'"):
        exec_html(report, ws)
    write(ws, "templates/reports/exec.html", "<html>{{ settings.database.url }}</html>")
    with pytest.raises(ReportError, match=r"^templates/reports/exec.html: undefined variable settings"):
        exec_html(report, ws)  # the page gets [brand]'s names, never the settings
