"""Findings written for people and for CI: text, JSON, GitHub workflow annotations, JUnit XML."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree

from pipeline.checks.runner import Finding, Report

FORMATS = ("text", "json", "github", "junit")
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _label(finding: Finding) -> str:
    return f"waived ({finding.waived})" if finding.waived else finding.severity.value


def as_text(reports: Sequence[Report]) -> str:
    lines: list[str] = []
    for report in reports:
        counts = {
            level: sum(f.severity.value == level and not f.waived for f in report.findings)
            for level in ("error", "warning", "info")
        }
        waived = sum(f.waived is not None for f in report.findings)
        summary = (
            ", ".join(f"{n} {level}{'s' if n != 1 else ''}" for level, n in counts.items() if n)
            or "no findings"
        )
        lines.append(
            f"{report.campaign}: {summary}{f', {waived} waived' if waived else ''} ({report.seconds:.2f} s)"
        )
        for finding in report.findings:
            lines.append(f"  {finding.where}: {_label(finding)} {finding.rule}: {finding.message}")
            lines.append(f"      fix: {finding.fix}")
    return "\n".join(lines)


def as_json(reports: Sequence[Report]) -> str:
    return json.dumps(
        [
            {
                "campaign": report.campaign,
                "seconds": round(report.seconds, 3),
                "findings": [
                    {
                        "rule": f.rule,
                        "severity": f.severity.value,
                        "waived": f.waived,
                        "path": str(f.where.path),
                        "line": f.where.line,
                        "message": f.message,
                        "fix": f.fix,
                    }
                    for f in report.findings
                ],
            }
            for report in reports
        ],
        indent=2,
        ensure_ascii=False,
    )


def _escape_github(text: str, *, property_value: bool = False) -> str:
    """Workflow-command escaping (actions/toolkit's escapeData and escapeProperty)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def as_github(reports: Sequence[Report]) -> str:
    lines = []
    for report in reports:
        for f in report.findings:
            if f.waived:
                continue
            where = f"file={_escape_github(str(f.where.path), property_value=True)}"
            if f.where.line:
                where += f",line={f.where.line}"
            title = _escape_github(f"{report.campaign}: {f.rule}", property_value=True)
            lines.append(
                f"::{_GITHUB_LEVEL[f.severity.value]} "
                f"{where},title={title}::{_escape_github(f'{f.message}. Fix: {f.fix}')}"
            )
    return "\n".join(lines)


def as_junit(reports: Sequence[Report]) -> str:
    """One test suite per campaign, one test case per finding: errors fail, the rest are skipped
    with their text (so a CI dashboard shows them without failing the build)."""
    suites = ElementTree.Element("testsuites", name="comms check")
    for report in reports:
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=report.campaign,
            tests=str(max(1, len(report.findings))),
            failures=str(len(report.errors)),
            time=f"{report.seconds:.3f}",
        )
        if not report.findings:
            ElementTree.SubElement(suite, "testcase", classname=report.campaign, name="all rules")
        for f in report.findings:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=f"{report.campaign}.{f.rule}",
                name=f"{f.where}",
                file=str(f.where.path),
            )
            detail = f"{f.message}\nfix: {f.fix}"
            if f.blocks:
                ElementTree.SubElement(case, "failure", message=f.message, type=f.rule).text = detail
            else:
                ElementTree.SubElement(case, "skipped", message=f"{_label(f)}: {f.message}").text = detail
    ElementTree.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
    )


def render(reports: Sequence[Report], fmt: str) -> str:
    return {"text": as_text, "json": as_json, "github": as_github, "junit": as_junit}[fmt](reports)
