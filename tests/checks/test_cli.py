"""`comms check` as a person and a CI job run it: exit codes, and the four output formats."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from tests.checks.conftest import edit
from tests.support.cli import assert_one_line_error, comms


def test_the_sample_workspace_has_no_errors(root: Path) -> None:
    result = comms("check", "--all", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    reports = json.loads(comms("check", "--all", "--format", "json", cwd=root).stdout)
    assert sorted(r["campaign"] for r in reports) == [
        "billing-portal",
        "plant-safety-update",
        "q3-results",
        "spring-launch",
        "tooling-offer/offer",  # an A/B test: every variant is checked
        "tooling-offer/question",
    ]
    assert [f for r in reports for f in r["findings"] if f["severity"] == "error"] == []
    assert all(f["path"].startswith("templates/") and f["line"] for r in reports for f in r["findings"])


def test_an_error_exits_1_and_every_format_carries_it(root: Path) -> None:
    line = (
        edit(
            root,
            "templates/copy/q3-results.md",
            "## What it means for you",
            "#### What it means for you\n\nLorem ipsum.",
        )
        + 2
    )
    text = comms("check", "q3-results", cwd=root)
    assert text.returncode == 1
    assert f"templates/copy/q3-results.md:{line}: error content.lorem-ipsum" in text.stdout

    github = comms("check", "q3-results", "--format", "github", cwd=root).stdout.splitlines()
    assert (
        f"::error file=templates/copy/q3-results.md,line={line},title=q3-results%3A content.lorem-ipsum::"
        in "\n".join(github)
    )
    assert any(a.startswith("::warning ") and "accessibility.heading-skip" in a for a in github)

    out = root / "checks.xml"
    assert comms("check", "--all", "--format", "junit", "--out", str(out), cwd=root).returncode == 1
    suites = ElementTree.parse(out).getroot()
    failures = {s.get("name"): int(s.get("failures") or 0) for s in suites.iter("testsuite")}
    assert failures == {
        "billing-portal": 0,
        "plant-safety-update": 0,
        "q3-results": 1,
        "spring-launch": 0,
        "tooling-offer/offer": 0,
        "tooling-offer/question": 0,
    }
    [failure] = suites.iter("failure")
    assert failure.get("type") == "content.lorem-ipsum"


def test_bad_arguments_are_one_line(root: Path) -> None:
    assert_one_line_error(comms("check", cwd=root), "name one or more campaigns, or give --all")
    assert_one_line_error(comms("check", "q3-results", "--format", "xml", cwd=root), "--format is one of")
    assert_one_line_error(comms("check", "nope", cwd=root), "no campaign named 'nope'")
