"""Fixtures for the checks: the sample workspace, edits to its files, and findings by rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.checks.runner import Finding, Report, check
from pipeline.workspace.folders import Workspace
from tests.support.workspace import SECRET


@pytest.fixture
def root(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    return workspace_dir


def edit(root: Path, relative: str, old: str, new: str) -> int:
    """Replace OLD (which must be there once) with NEW in ROOT/RELATIVE; the line NEW starts on."""
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {relative} exactly once"
    at = text.index(old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text.count("\n", 0, at) + 1


def finding_at_edit(
    root: Path, relative: str, old: str, new: str, rule: str, *, campaign: str = "spring-launch"
) -> Finding:
    """The one finding of RULE in CAMPAIGN's check after edit(), which names the line the edit starts on."""
    line = edit(root, relative, old, new)
    [finding] = found(run(root, campaign), rule)
    assert where(finding) == (relative, line)
    return finding


def line_of(root: Path, relative: str, needle: str) -> int:
    text = (root / relative).read_text(encoding="utf-8")
    assert needle in text
    return text.count("\n", 0, text.index(needle)) + 1


def run(root: Path, campaign: str) -> Report:
    return check(Workspace.open(root), campaign)


def found(report: Report, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == rule]


def where(finding: Finding) -> tuple[str, int | None]:
    return str(finding.where.path), finding.where.line
