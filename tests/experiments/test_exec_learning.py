"""A decided test in the exec report: its line in reports/ab-log.md (issue 16's writer) is what
`comms report exec` (issue 13's reader) shows under Campaigns for a period holding its decision date,
and not for another period. Sent over real SMTP, clicked through the real tracking server, decided by
`comms ab decide`, the report written by `comms report exec`."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape

import lxml.html
import pytest

from pipeline.storage.engines import session
from pipeline.storage.models import Run
from tests.conftest import sqlite_only
from tests.experiments.conftest import Lab
from tests.support.cli import comms

pytestmark = sqlite_only  # see tests/conftest.py

LOG = "reports/ab-log.md"


def _learnings(lab: Lab, period: str) -> list[str]:
    """The A/B lines of `comms report exec --period PERIOD`'s HTML, as the Campaigns section shows them."""
    written = comms("report", "exec", "--period", period, "--out", "out", "--format", "html", cwd=lab.root)
    assert written.returncode == 0, written.stderr
    [path] = (lab.root / "out").glob("exec-*.html")
    page = lxml.html.document_fromstring(path.read_text(encoding="utf-8"))
    path.unlink()
    campaigns = page.get_element_by_id("campaigns")
    assert "What A/B tests decided" not in page.text_content().replace(campaigns.text_content(), "")
    if campaigns.find(".//h3[@id='learnings']") is None:
        return []
    return [" ".join(item.text_content().split()) for item in campaigns.iterfind(".//li")]


def _quarter(day: datetime) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


@pytest.fixture
def decided(lab: Lab) -> tuple[int, datetime, str]:
    """A test with a clear winner, decided by the rule: (run id, decision time, its log line)."""
    run = lab.send_arms()
    lab.engage(run, {"offer": 4, "question": 24})
    result = comms("ab", "decide", str(run.id), "--no-send", cwd=lab.root)
    assert result.returncode == 0, result.stderr
    with session(lab.engine) as db:
        stored = db.get(Run, run.id)
    assert stored is not None
    when = datetime.fromisoformat(stored.meta["ab"]["decision"]["decided_at"])
    [line] = [
        entry for entry in (lab.root / LOG).read_text(encoding="utf-8").splitlines() if entry.startswith("- ")
    ]
    return run.id, when, line


def test_a_decided_tests_log_line_is_in_the_exec_report_of_its_period_only(
    lab: Lab, decided: tuple[int, datetime, str]
) -> None:
    run_id, when, line = decided
    assert line.startswith(f"- {when:%Y-%m-%d} **tooling-offer** (run {run_id})")

    for period in (_quarter(when), f"{when:%Y-%m}", str(when.year), "last-30d"):
        [shown] = _learnings(lab, period)
        # The log's Markdown, rendered: "date: " and the line's text without its ** and `.
        day = f"{when:%Y-%m-%d}"
        assert shown == f"{day}: " + unescape(re.sub(r"\*\*|`", "", line.removeprefix(f"- {day} "))), period
        assert "question: n=40, 60.0%, P(best) 1.000" in shown
        assert "decision: question (rule; sent to the other 80)" in shown

    for period in ("previous-quarter", f"{when.year - 1}", "2027-Q1"):
        assert _learnings(lab, period) == [], period
