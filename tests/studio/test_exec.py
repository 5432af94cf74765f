"""The studio's exec report over HTTP: the page is `comms report exec`'s page, every download is the
file the command writes (same bytes), the period picker offers the quarters and months that have
runs, aggregate mode's suppression shows through, and looking writes nothing into the workspace."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import httpx
from sqlalchemy import Engine

from pipeline.demo.history import Outcome, add_contacts, insert_run
from pipeline.storage.models import utcnow
from tests.conftest import sqlite_only
from tests.reports.conftest import seed_two_quarters
from tests.support.cli import comms
from tests.support.workspace import configure

pytestmark = sqlite_only  # see tests/conftest.py

# A report is many queries and the PDF a WeasyPrint render: generous on a loaded machine.
SLOW_S = 300
TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
ERROR = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.DOTALL)


def _buttons(page: str) -> dict[str, str]:
    """The export buttons of an exec page: file name -> link."""
    links = [unescape(h) for h in re.findall(r'<a class="button" href="([^"]+)" download>', page)]
    return {link.partition("?")[0].removeprefix("/exec/"): link for link in links}


def _frame(page: str) -> str:
    found = re.search(r'<iframe id="exec-report"[^>]*srcdoc="([^"]*)"', page)
    assert found is not None
    return unescape(found[1])


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ROOT with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_every_download_is_the_file_comms_report_exec_writes(
    studio: str, engine: Engine, workspace_dir: Path, tmp_path: Path
) -> None:
    seed_two_quarters(engine)
    before = _tree(workspace_dir)
    page = httpx.get(f"{studio}/exec", params={"period": "2027-Q1"}, timeout=SLOW_S)
    assert page.status_code == 200
    buttons = _buttons(page.text)
    downloads = {}
    for name, link in buttons.items():
        got = httpx.get(studio + link, timeout=SLOW_S)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == TYPES[name.rpartition(".")[2]]
        assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
        downloads[name] = got.content
    yoy = httpx.get(f"{studio}/exec", params={"period": "2027-Q1", "compare": "yoy"}, timeout=SLOW_S)
    json_yoy = httpx.get(studio + _buttons(yoy.text)["exec-2027-Q1.json"], timeout=SLOW_S)
    assert _tree(workspace_dir) == before  # looking and downloading wrote nothing into the workspace

    done = comms("report", "exec", "--period", "2027-Q1", "--out", str(tmp_path / "cli"), cwd=workspace_dir)
    assert done.returncode == 0, done.stderr
    written = {p.name: p.read_bytes() for p in (tmp_path / "cli").iterdir()}
    assert sorted(downloads) == sorted(written) and len(written) == 7  # html, pdf, json, four CSVs
    assert downloads == written
    assert downloads["exec-2027-Q1.pdf"].startswith(b"%PDF-")
    assert _frame(page.text).encode() == written["exec-2027-Q1.html"]  # the page shown is the file

    done = comms(
        "report", "exec", "--period", "2027-Q1", "--compare", "yoy", "--format", "json",
        "--out", str(tmp_path / "yoy"), cwd=workspace_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json_yoy.content == (tmp_path / "yoy" / "exec-2027-Q1.json").read_bytes()
    assert json.loads(json_yoy.content)["compare"]["label"] == "2026-Q1"
    assert '<option value="yoy" selected>' in yoy.text


def _quarter(year: int, month: int) -> str:
    return f"{year}-Q{(month - 1) // 3 + 1}"


def test_the_picker_offers_periods_with_runs_and_opens_on_the_latest_complete_quarter(
    studio: str, engine: Engine
) -> None:
    now = utcnow()
    empty = httpx.get(f"{studio}/exec", timeout=SLOW_S)
    last = now.replace(day=1) - timedelta(days=80)  # somewhere in the quarter before this one
    assert empty.status_code == 200 and f"exec-{_quarter(last.year, last.month)}.pdf" in empty.text

    earlier, current = now - timedelta(days=120), now  # 120 days: a quarter that has ended
    with engine.begin() as conn:
        [person] = add_contacts(conn, [("p@corp.example", "sales")])
        for started in (earlier, current):
            insert_run(conn, "alpha", "sales", "staff", started, [Outcome(person, click_after_s=60)])
    page = httpx.get(f"{studio}/exec", timeout=SLOW_S).text
    options = re.findall(r'<option value="([^"]+)"( selected)?>', page)
    old, new = _quarter(earlier.year, earlier.month), _quarter(current.year, current.month)
    months = [f"{current.year}-{current.month:02d}", f"{earlier.year}-{earlier.month:02d}"]
    assert [value for value, _ in options] == [new, old, *months, "previous", "yoy"]
    assert [value for value, selected in options if selected] == [old, "previous"]
    assert f"/exec/exec-{old}.pdf?period={old}&amp;compare=previous" in page
    assert 'aria-current="page">Exec report</a>' in page

    # A period typed into the address is shown (and chosen) even when the picker does not list it.
    typed = httpx.get(f"{studio}/exec", params={"period": "2027"}, timeout=SLOW_S).text
    assert '<option value="2027" selected>2027</option>' in typed and "exec-2027.pdf" in typed


def test_aggregate_mode_suppresses_small_departments_on_the_page_and_in_the_files(
    studio: str, engine: Engine, workspace_dir: Path
) -> None:
    seed_two_quarters(engine, legal=3)
    configure(workspace_dir, {"reports": 'mode = "aggregate"\nmin_cell = 5'})
    page = httpx.get(f"{studio}/exec", params={"period": "2027-Q1"}, timeout=SLOW_S).text
    assert "suppressed: fewer than 5 delivered" in _frame(page)
    assert '[reports] mode = "aggregate"' in unescape(page)
    buttons = _buttons(page)
    departments = httpx.get(studio + buttons["exec-2027-Q1-departments.csv"], timeout=SLOW_S).text
    legal = [r for r in csv.DictReader(io.StringIO(departments)) if r["department"] == "legal"]
    assert [(r["suppressed"], r["delivered"], r["human_click_rate"]) for r in legal] == [("true", "", "")]
    data = httpx.get(studio + buttons["exec-2027-Q1.json"], timeout=SLOW_S).json()
    assert [r["delivered"] for r in data["departments"]["recipient"] if r["department"] == "legal"] == [None]

    configure(workspace_dir, {"reports": 'mode = "individual"\nmin_cell = 5'})
    shown = _frame(httpx.get(f"{studio}/exec", params={"period": "2027-Q1"}, timeout=SLOW_S).text)
    assert "suppressed: fewer than 5 delivered" not in shown


def test_a_bad_period_or_file_is_a_one_line_error(studio: str, engine: Engine) -> None:
    bad = httpx.get(f"{studio}/exec", params={"period": "2027-Q5"}, timeout=SLOW_S)
    assert bad.status_code == 404
    [error] = ERROR.findall(bad.text)
    assert unescape(error).startswith("period '2027-Q5': use YYYY-Qn (2027-Q1)")
    compare = httpx.get(f"{studio}/exec", params={"compare": "lastyear"}, timeout=SLOW_S)
    assert [unescape(e) for e in ERROR.findall(compare.text)] == ["compare 'lastyear': use previous or yoy"]
    for name in ("exec-2027-Q2.pdf", "exec-2027-Q1.docx", "exec-2027-Q1-people.csv", "comms.toml"):
        refused = httpx.get(f"{studio}/exec/{name}", params={"period": "2027-Q1"}, timeout=SLOW_S)
        assert refused.status_code == 404, name
        assert "content-disposition" not in refused.headers
        [error] = ERROR.findall(refused.text)
        assert unescape(error) == f"{name}: not a file of the exec report for 2027-Q1"
