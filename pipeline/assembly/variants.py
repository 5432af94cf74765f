"""A/B variants in the copy: front matter `variants:` (what each arm changes) and `test:` (how it is judged).

    variants:
      - name: plain                       # the first variant is the control
      - name: question
        subject: "Ready for spring?"      # any front-matter field: subject, preheader, headline...
        body: |                           # or a different body (Markdown)
          ...
    test:
      metric: human_click_rate            # or human_open_rate (only where Apple proxies are few)
      lift: 2%                            # the smallest absolute lift worth detecting
      baseline: 8%                        # optional: else the campaign's past runs
      share: 40%                          # of the audience in the test arms, or "learn only"
      decide_after: 24h                   # the decision time, from the run's start
      guardrails: {unsubscribe_rate: 1%, complaint_rate: 0.1%}

A variant may not change who the run goes to or how it is tracked (audience, department,
tracking): one run, one audience, one department.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.assembly.copy import Copy, FrontMatter
from pipeline.errors import CopyError
from pipeline.workspace.settings import parse_duration

LEARN_ONLY = "learn only"
# What a variant may not override.
_FIXED = ("name", "audience", "department", "tracking", "stage", "owner", "due", "variants", "test")
# At or above this Apple-proxy share of openers, human opens say little and the open metric is refused.
MAX_APPLE_SHARE_FOR_OPENS = 0.2


def fraction(value: object) -> object:
    """ "2%" -> 0.02; a number stays as written (a fraction)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            return value
    return value


class Guardrails(BaseModel):
    """The highest unsubscribe and complaint rates (of delivered) a winning arm may have."""

    model_config = ConfigDict(extra="forbid")

    unsubscribe_rate: float = Field(default=0.01, ge=0, le=1)
    complaint_rate: float = Field(default=0.001, ge=0, le=1)

    @field_validator("unsubscribe_rate", "complaint_rate", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> object:
        return fraction(value)


class Test(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Literal["human_click_rate", "human_open_rate"] = "human_click_rate"
    lift: float = Field(gt=0, lt=1)
    baseline: float | None = Field(default=None, ge=0, lt=1)
    share: float | Literal["learn only"] = Field(default=0.2)
    decide_after: timedelta = timedelta(hours=24)
    guardrails: Guardrails = Field(default_factory=Guardrails)

    @field_validator("lift", "baseline", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> object:
        return fraction(value)

    @field_validator("share", mode="before")
    @classmethod
    def _share(cls, value: object) -> object:
        value = fraction(value)
        if isinstance(value, (int, float)) and not 0 < value < 1:
            raise ValueError('share is a part of the audience (between 0% and 100%), or "learn only"')
        return value

    @field_validator("decide_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            found = parse_duration(value)
            if found is None:
                raise ValueError(f'decide_after must look like "24h", "2 days" or "90 min", not {value!r}')
            return found
        return value

    @property
    def learn_only(self) -> bool:
        return self.share == LEARN_ONLY


@dataclass(frozen=True)
class AbTest:
    """A campaign's A/B test as the copy states it; VARIANTS[0] is the control."""

    variants: tuple[str, ...]
    test: Test

    @property
    def control(self) -> str:
        return self.variants[0]


def load_test(copy: Copy) -> AbTest | None:
    """The copy's A/B test, or None when it has no `variants:`; errors name the file and line."""
    raw = copy.fields.get("variants")
    if raw is None:
        if "test" in copy.fields:
            raise _error(copy, "variants", "`test:` needs `variants:` (at least two, the first the control)")
        return None
    if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(v, dict) for v in raw):
        raise _error(copy, "variants", "`variants:` is a list of at least two `- name: ...` entries")
    names: list[str] = []
    for entry in raw:
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise _error(copy, "variants", "every variant has a `name:` (up to 100 characters)")
        if name in names:
            raise _error(copy, "variants", f"two variants are named {name!r}")
        fixed = sorted(set(entry) & set(_FIXED) - {"name"})
        if fixed:
            raise _error(copy, "variants", f"variant {name!r} may not change `{fixed[0]}`: a run has one")
        names.append(name)
    try:
        test = Test.model_validate(copy.fields.get("test") or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _error(copy, "test", f"`test:` {where}: {first['msg'].removeprefix('Value error, ')}") from None
    return AbTest(tuple(names), test)


def with_variant(copy: Copy, name: str) -> Copy:
    """COPY as variant NAME sends it: its fields over the front matter, its `body:` for the body."""
    entries = {entry.get("name"): entry for entry in copy.fields.get("variants") or []}
    if name not in entries:
        known = ", ".join(str(n) for n in entries) or "none"
        raise _error(copy, "variants", f"no variant named {name!r} (variants: {known})")
    overrides: dict[str, Any] = {k: v for k, v in entries[name].items() if k not in ("name", "body")}
    fields = {**copy.fields, **overrides}
    try:
        front = FrontMatter.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _error(copy, "variants", f"variant {name!r}: `{first['loc'][0]}`: {first['msg']}") from None
    body = entries[name].get("body")
    if body is not None and not isinstance(body, str):
        raise _error(copy, "variants", f"variant {name!r}: `body:` is Markdown text")
    if body is None:
        return replace(copy, front=front, fields=fields)
    return replace(copy, front=front, fields=fields, body=body, body_line=copy.field_lines.get("variants", 1))


def _error(copy: Copy, key: str, message: str) -> CopyError:
    return CopyError(message, path=copy.path, line=copy.field_lines.get(key))
