"""Goals from git: reports/goals.toml sets a target per KPI, overall and per department.

    [overall]
    human_click_rate = { min = 0.03 }     # at least 3%
    unsubscribe_rate = { max = 0.003 }    # at most 0.3%
    [departments.sales]
    human_click_rate = { min = 0.04 }

A figure is `met` on the target's side of it, `at risk` when it is not but its 95% interval still
reaches the target (a rate) or it is within `margin` (10%) of it (a count), and `missed` otherwise.
Kept in the workspace so that a change of target is a reviewed commit like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.errors import ReportError
from pipeline.reports.glossary import Rate
from pipeline.workspace.folders import Workspace
from pipeline.workspace.tomlfile import read_toml, validate

GOALS_FILE = "reports/goals.toml"
Status = Literal["met", "at risk", "missed", "no target", "no data"]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None
    margin: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _one_bound(self) -> Target:
        if (self.min is None) == (self.max is None):
            raise ValueError("give either min (at least) or max (at most)")
        return self

    def describe(self, *, percent: bool) -> str:
        """ "at least 6%" (PERCENT, for a rate) or "at most 0.5"."""
        bound = self.min if self.min is not None else self.max
        assert bound is not None
        shown = f"{bound * 100:g}%" if percent else f"{bound:g}"
        return f"at least {shown}" if self.min is not None else f"at most {shown}"


class _GoalsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overall: dict[str, Target] = Field(default_factory=dict)
    departments: dict[str, dict[str, Target]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Goals:
    overall: dict[str, Target]
    departments: dict[str, dict[str, Target]]

    def for_department(self, department: str, kpi: str) -> Target | None:
        return self.departments.get(department, {}).get(kpi)


def load_goals(ws: Workspace, known: frozenset[str]) -> Goals:
    """reports/goals.toml (no goals when it is absent); KNOWN are the KPI ids a target may name."""
    path = ws.root / GOALS_FILE
    if not path.is_file():
        return Goals({}, {})
    shown = ws.relative(path)
    text, data = read_toml(path, shown, ReportError)
    parsed = validate(_GoalsFile, text, data, shown, ReportError)
    for table in (parsed.overall, *parsed.departments.values()):
        for kpi in table:
            if kpi not in known:
                raise ReportError(f"unknown KPI {kpi!r}: use one of {', '.join(sorted(known))}", path=shown)
    return Goals(dict(parsed.overall), {d: dict(t) for d, t in parsed.departments.items()})


def status(target: Target | None, value: float | None, rate: Rate | None = None) -> Status:
    """Where VALUE stands against TARGET; RATE (when VALUE is one) lends its interval to `at risk`."""
    if target is None:
        return "no target"
    if value is None:
        return "no data"
    if target.min is not None:
        if value >= target.min:
            return "met"
        near = rate.high >= target.min if rate and rate.high is not None else False
        near = near or value >= target.min * (1 - target.margin)
    else:
        assert target.max is not None
        if value <= target.max:
            return "met"
        near = rate.low <= target.max if rate and rate.low is not None else False
        near = near or value <= target.max * (1 + target.margin)
    return "at risk" if near else "missed"
