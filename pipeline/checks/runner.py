"""Running every rule family on a campaign, with the severities and waivers that apply, and the gate.

Each family (brand, accessibility, compatibility, deliverability, content) yields hits; the runner
gives each its severity from ``[checks] severity`` (else the rule's default) and marks those the
copy's front matter waives::

    waive:
      content.subject-caps: "KF-9 is the product's name"

A waived rule is still reported, as waived, with its reason; a waiver without a reason, or for a
rule that does not exist, is itself an error. ``gate`` is what a run calls before it is created.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from pipeline.assembly.campaign import Campaign, assemble
from pipeline.assembly.copy import Copy, load_copy
from pipeline.assembly.variants import load_test
from pipeline.checks import accessibility, brand, compatibility, content, deliverability, recipients
from pipeline.checks.sources import Location
from pipeline.checks.subject import Family, Rule, Severity, build_subject
from pipeline.errors import CheckFailed, CopyError, SettingsError
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import SETTINGS_FILE
from pipeline.workspace.tomlfile import toml_line

FAMILIES: tuple[tuple[tuple[Rule, ...], Family], ...] = tuple(
    (module.RULES, module.check)
    for module in (brand, accessibility, compatibility, deliverability, content, recipients)
)


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    fix: str
    where: Location
    waived: str | None = None  # the waiver's reason

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.error and self.waived is None


@dataclass(frozen=True)
class Report:
    campaign: str
    findings: tuple[Finding, ...]
    seconds: float

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocks)


def all_rules() -> tuple[Rule, ...]:
    return tuple(rule for rules, _ in FAMILIES for rule in rules)


def check(
    ws: Workspace, name: str, campaign: Campaign | None = None, *, scan_audience: bool = True
) -> Report:
    """Every rule on campaign NAME; the findings come in rule order, each with file and line.

    SCAN_AUDIENCE False leaves out the recipients family (a run start checks its own audience)."""
    started = time.perf_counter()
    known = {rule.id: rule for rule in all_rules()}
    severities = _severities(ws, known)
    subject = build_subject(ws, name, campaign, scan_audience=scan_audience)
    waivers = _waivers(subject.copy, known)
    findings: list[Finding] = []
    for rules, family in FAMILIES:
        if all(severities.get(rule.id) == "off" for rule in rules):
            continue
        for hit in family(subject):
            level = severities.get(hit.rule.id, hit.rule.severity.value)
            if level == "off":
                continue
            findings.append(
                Finding(
                    rule=hit.rule.id,
                    severity=Severity(level),
                    message=hit.message,
                    fix=hit.fix,
                    where=hit.where or subject.sources.fallback(),
                    waived=waivers.get(hit.rule.id),
                )
            )
    return Report(name, tuple(findings), time.perf_counter() - started)


def check_variants(ws: Workspace, name: str) -> list[Report]:
    """check() on campaign NAME, or on each of its A/B variants (each reported as NAME/VARIANT):
    every message a run of it would send."""
    test = load_test(load_copy(ws, name))
    if test is None:
        return [check(ws, name)]
    return [
        replace(check(ws, name, assemble(ws, name, variant)), campaign=f"{name}/{variant}")
        for variant in test.variants
    ]


def check_all(ws: Workspace, names: Iterable[str] | None = None) -> Iterator[Report]:
    for name in names if names is not None else ws.campaign_names():
        yield from check_variants(ws, name)


def refuse_on_errors(report: Report) -> None:
    """Raise CheckFailed naming the first blocking finding's file and line, if there is one."""
    errors = report.errors
    if not errors:
        return
    first = errors[0]
    more = (
        f" (and {len(errors) - 1} more error(s): run `comms check {report.campaign}`)"
        if len(errors) > 1
        else ""
    )
    raise CheckFailed(
        f"{first.rule}: {first.message}{more}",
        path=first.where.path,
        line=first.where.line,
        findings=errors,
    )


def _severities(ws: Workspace, known: dict[str, Rule]) -> dict[str, str]:
    configured = ws.settings.checks.severity
    for rule_id in configured:
        if rule_id not in known:
            path = ws.root / SETTINGS_FILE
            text = path.read_text(encoding="utf-8")
            raise SettingsError(
                f"[checks] severity names an unknown rule {rule_id!r} (see README, Checks)",
                path=ws.relative(path),
                line=toml_line(text, ("checks", "severity", rule_id)),
            )
    return dict(configured)


def _waivers(copy: Copy, known: dict[str, Rule]) -> dict[str, str]:
    """`waive:` in the front matter: {rule id: reason}."""
    raw: Any = copy.fields.get("waive")
    if raw is None:
        return {}
    line = copy.field_lines.get("waive")
    if not isinstance(raw, dict):
        raise CopyError(
            '`waive` is a mapping of rule id to reason, e.g. `content.subject-caps: "why"`',
            path=copy.path,
            line=line,
        )
    waivers: dict[str, str] = {}
    for rule_id, reason in raw.items():
        if str(rule_id) not in known:
            raise CopyError(
                f"`waive` names an unknown rule {rule_id!r} (see README, Checks)", path=copy.path, line=line
            )
        if not isinstance(reason, str) or not reason.strip():
            raise CopyError(f"`waive` {rule_id}: say why the rule does not apply", path=copy.path, line=line)
        waivers[str(rule_id)] = reason.strip()
    return waivers
