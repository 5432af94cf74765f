"""The studio's A/B results: the list of tests with their status, and a decided test's page with each
arm's figures, the decision, who chose it and the rule; in aggregate mode small arms suppressed there
and in `comms report run`. The test is sent over real SMTP and clicked through the real tracking
server (tests/experiments' lab), and decided by `comms ab decide`."""

from __future__ import annotations

import json
import re
from html import unescape

import httpx
from sqlalchemy import update

from pipeline.experiments.decision import RULE
from pipeline.storage.models import Run, utcnow
from tests.conftest import sqlite_only
from tests.experiments.conftest import Lab, engine, lab, ws_root
from tests.support.cli import comms
from tests.support.workspace import configure

pytestmark = sqlite_only  # see tests/conftest.py

__all__ = ["engine", "lab", "ws_root"]


def _cells(html: str, table: str) -> list[list[str]]:
    """The text of each body row's cells of the table labelled TABLE."""
    found = re.search(rf'<table aria-label="{table}">.*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    assert found is not None, f"no table {table}"
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found[1], re.DOTALL)
    ]


def _text(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)</', html, re.DOTALL)
    assert found is not None, f"no #{element_id}"
    return unescape(found[1]).strip()


def _decided(lab: Lab, *args: str) -> int:
    """A test sent and clicked (offer 4 of 40, question 24 of 40), decided by `comms ab decide`."""
    run = lab.send_arms()
    lab.engage(run, {"offer": 4, "question": 24})
    decided = comms("ab", "decide", str(run.id), *args, "--no-send", cwd=lab.root)
    assert decided.returncode == 0, decided.stderr
    return run.id


def test_the_list_shows_each_test_testing_waiting_then_decided(lab: Lab, lab_studio: str) -> None:
    run = lab.send_arms()
    listed = httpx.get(f"{lab_studio}/runs", timeout=60)
    assert '<a href="/ab">A/B tests</a>' in listed.text

    [row] = _cells(httpx.get(f"{lab_studio}/ab", timeout=60).text, "A/B tests")
    assert row[:5] == [
        str(run.id),
        "tooling-offer",
        "offer (control) vs question",
        "Human click rate",
        "testing",
    ]
    assert row[5] == run.ab_decide_at.strftime("%Y-%m-%d %H:%M") and row[6] == "-"
    with lab.engine.begin() as conn:  # the day passes with no daemon to decide it
        conn.execute(update(Run).where(Run.id == run.id).values(ab_decide_at=utcnow()))
    [row] = _cells(httpx.get(f"{lab_studio}/ab", timeout=60).text, "A/B tests")
    assert row[4] == "waiting for decision"
    page = httpx.get(f"{lab_studio}/runs/{run.id}/ab", timeout=60)
    assert _text(page.text, "status").startswith("waiting for decision: decided at")
    assert 'aria-label="Arms"' not in page.text  # no figures before the decision

    lab.engage(run, {"offer": 4, "question": 24})
    assert comms("ab", "decide", str(run.id), "--no-send", cwd=lab.root).returncode == 0
    [row] = _cells(httpx.get(f"{lab_studio}/ab", timeout=60).text, "A/B tests")
    assert row[4] == "decided" and row[6] == "question (rule)"
    assert row[5][:10] == utcnow().strftime("%Y-%m-%d")


def test_a_decided_tests_page_shows_what_comms_report_run_shows(lab: Lab, lab_studio: str) -> None:
    run_id = _decided(lab)
    report = comms("report", "run", str(run_id), "--format", "json", cwd=lab.root)
    assert report.returncode == 0, report.stderr
    decision = json.loads(report.stdout)["ab"]["decision"]

    page = httpx.get(f"{lab_studio}/runs/{run_id}/ab", timeout=60)

    assert page.status_code == 200
    assert _text(page.text, "winner") == "question" == decision["winner"]
    assert _text(page.text, "chosen-by") == "the rule"
    assert _text(page.text, "reason") == decision["reason"] and "P(best) 1.000 ≥ 0.95" in decision["reason"]
    assert _text(page.text, "rule") == RULE == decision["rule"]
    arms = {row[0]: row for row in _cells(page.text, "Arms")}
    for arm in decision["arms"]:
        shown = arms[arm["variant"]]
        assert shown[1] == str(arm["n"]) == "40"
        assert shown[2] == f"{arm['rate']:.1%} ({arm['low'] * 100:.1f}-{arm['high']:.1%})"
        assert shown[3:] == [
            f"{arm['p_best']:.3f}",
            f"{arm['expected_loss']:.4f}",
            f"{arm['unsubscribe_rate']:.2%}",
            f"{arm['complaint_rate']:.2%}",
        ]
    assert arms["offer"][2] == "10.0% (4.0-23.1%)" and arms["question"][2] == "60.0% (44.6-73.7%)"
    assert (arms["offer"][3], arms["question"][3]) == ("0.000", "1.000")
    run_page = httpx.get(f"{lab_studio}/runs/{run_id}", timeout=60).text
    assert f'<a href="/runs/{run_id}/ab">A/B test</a>' in run_page


def test_a_manual_override_shows_its_reason(lab: Lab, lab_studio: str) -> None:
    run_id = _decided(lab, "--winner", "offer", "--reason", "brand keeps the <b>offer</b> line")
    page = httpx.get(f"{lab_studio}/runs/{run_id}/ab", timeout=60).text
    assert _text(page, "winner") == "offer" and _text(page, "chosen-by") == "a manual override"
    assert _text(page, "reason") == "manual: brand keeps the <b>offer</b> line"  # text, not markup
    [row] = _cells(httpx.get(f"{lab_studio}/ab", timeout=60).text, "A/B tests")
    assert row[6] == "offer (manual override)"
    assert httpx.get(f"{lab_studio}/runs/9999/ab", timeout=60).status_code == 404


def test_aggregate_mode_suppresses_arms_under_min_cell_here_and_in_comms_report_run(
    lab: Lab, lab_studio: str
) -> None:
    run_id = _decided(lab)
    configure(lab.root, {"reports": 'mode = "aggregate"\nmin_cell = 40'})  # arms of 40: shown
    arms = _cells(httpx.get(f"{lab_studio}/runs/{run_id}/ab", timeout=60).text, "Arms")
    assert [row[:2] for row in arms] == [["offer", "40"], ["question", "40"]]

    configure(lab.root, {"reports": 'mode = "aggregate"\nmin_cell = 41'})  # arms of 40: suppressed
    page = httpx.get(f"{lab_studio}/runs/{run_id}/ab", timeout=60).text
    arms = _cells(page, "Arms")
    assert [row[:2] for row in arms] == [["offer", "suppressed (fewer than min_cell)"]] + [
        ["question", "suppressed (fewer than min_cell)"]
    ]
    assert all(cell == "" for row in arms for cell in row[2:])
    assert _text(page, "winner") == "question"  # the decision itself is not a figure of people

    text = comms("report", "run", str(run_id), cwd=lab.root)
    assert text.returncode == 0, text.stderr
    assert "offer            suppressed (fewer than [reports] min_cell recipients)" in text.stdout
    assert "n=40" not in text.stdout and "P(best) 0.000" not in text.stdout
    data = json.loads(comms("report", "run", str(run_id), "--format", "json", cwd=lab.root).stdout)
    assert data["ab"]["decision"]["arms"] == [
        {"variant": "offer", "suppressed": True},
        {"variant": "question", "suppressed": True},
    ]
    html = lab.root / "run.html"
    assert comms("report", "run", str(run_id), "--html", str(html), cwd=lab.root).returncode == 0
    shown = html.read_text(encoding="utf-8")
    assert "<td>offer</td><td>suppressed (fewer than min_cell)</td>" in shown
    assert "<td>0.000</td>" not in shown and "<td>1.000</td>" not in shown
