"""Department files: departments/NAME.toml, what the communications lead agreed with each department head.

A department file::

    needs = "Launch news and offers ..."       # free text: what they asked for
    audiences = ["customers", "customers-eu"]  # the audiences they own
    cadence = "monthly"                        # or "at least 2 per month", "at most 2 per week to staff"
    [head]
    name = "Marcus Webb"
    email = "marcus.webb@kestrelforge.example"
    [[goal]]                                   # targets the exec report reads
    metric = "click_rate"
    target = 0.04
    description = "4% of delivered emails lead to a click"

NAME is what copy front matter says as `department:`. A cadence without "to ..." counts the
department's own campaigns; with "to WHOM" it counts every campaign that reaches the audiences the
department owns, whoever sends it (a head protecting their people's inbox).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.errors import DepartmentError
from pipeline.workspace.folders import Workspace
from pipeline.workspace.tomlfile import read_toml, toml_line, validate

Period = Literal["day", "week", "fortnight", "month", "quarter", "year"]
_ADVERBS: dict[str, Period] = {
    "daily": "day",
    "weekly": "week",
    "fortnightly": "fortnight",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
    "annually": "year",
}
_NUMBERS = {"once": 1, "twice": 2, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_COUNTED = re.compile(
    r"^(?:(?P<bound>at least|at most|exactly)\s+)?(?P<count>\d+|once|twice|one|two|three|four|five)"
    r"(?:\s+times?)?\s+(?:per|a|an|every)\s+(?P<period>day|week|fortnight|month|quarter|year)"
    r"(?:\s+to\s+(?P<whom>.+))?$"
)
_ADVERB = re.compile(rf"^(?P<adverb>{'|'.join(_ADVERBS)})(?:\s+to\s+(?P<whom>.+))?$")


@dataclass(frozen=True)
class Cadence:
    """How often a department wants to be heard (MIN) or its people written to (MAX), per PERIOD."""

    text: str
    minimum: int | None
    maximum: int | None
    period: Period
    to_owned_audiences: bool  # "... to WHOM": count every campaign reaching the department's audiences

    @classmethod
    def parse(cls, text: str) -> Cadence:
        said = " ".join(text.lower().split())
        if found := _ADVERB.match(said):
            period, whom = _ADVERBS[found["adverb"]], found["whom"]
            return cls(text, 1, 1, period, whom is not None)
        if found := _COUNTED.match(said):
            count = int(found["count"]) if found["count"].isdigit() else _NUMBERS[found["count"]]
            bound = found["bound"] or "exactly"
            low = count if bound in ("at least", "exactly") else None
            high = count if bound in ("at most", "exactly") else None
            return cls(text, low, high, found["period"], found["whom"] is not None)  # type: ignore[arg-type]
        raise ValueError(
            f'cadence {text!r} is not one of "monthly", "2 per month", "at least 1 per week", '
            '"at most 2 per week to production staff"'
        )


class Head(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")


class Goal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1)
    target: float
    description: str = ""


class DepartmentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    head: Head
    needs: str = ""
    audiences: list[str] = Field(default_factory=list)
    cadence: str | None = None
    goal: list[Goal] = Field(default_factory=list)

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: str | None) -> str | None:
        if value is not None:
            Cadence.parse(value)
        return value


@dataclass(frozen=True)
class Department:
    name: str
    path: str  # as shown to people
    head_name: str
    head_email: str
    needs: str
    audiences: tuple[str, ...]
    cadence: Cadence | None
    goals: tuple[Goal, ...]


def load_departments(ws: Workspace) -> list[Department]:
    """Every departments/*.toml, checked; DepartmentError names the file, line and field."""
    found = []
    for path in sorted(ws.departments_dir.glob("*.toml")):
        shown = ws.relative(path)
        text, data = read_toml(path, shown, DepartmentError)
        parsed = validate(DepartmentFile, text, data, shown, DepartmentError)
        known = {p.stem for p in ws.audiences_dir.glob("*.toml")}
        for audience in parsed.audiences:
            if audience not in known:
                line = toml_line(text, ("audiences",))
                raise DepartmentError(f"audiences: {audience!r} is not in audiences/", path=shown, line=line)
        found.append(
            Department(
                name=path.stem,
                path=str(shown),
                head_name=parsed.head.name,
                head_email=parsed.head.email,
                needs=parsed.needs,
                audiences=tuple(parsed.audiences),
                cadence=Cadence.parse(parsed.cadence) if parsed.cadence else None,
                goals=tuple(parsed.goal),
            )
        )
    return found
