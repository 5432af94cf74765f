"""Schedule files: schedules/NAME.toml say which campaign goes to which audience when, checked on load.

A schedule file::

    campaign = "spring-launch"      # templates/copy/spring-launch.md
    audience = "customers-eu"       # optional; defaults to the copy's audience
    timezone = "Europe/Warsaw"      # every time in the file is local to this zone
    window = "09:00-17:00"          # optional: send only inside these local hours
    enabled = true                  # optional; false keeps the file but schedules nothing
    [[trigger]]
    at = "2027-03-01T09:00"         # a one-off
    [[trigger]]
    cron = "0 9 * * MON"            # recurring: minute hour day month day-of-week

Times are local so that "9 o'clock" stays 9 o'clock across daylight-saving changes.

A schedule file may name a report instead of a campaign; the daemon builds it and mails it::

    report = "exec"                 # the report for the head of the company
    period = "previous-month"       # or previous-quarter, previous-year: the last complete one
    compare = "previous"            # optional; or "yoy"
    to = ["ceo@kestrelforge.example"]
    timezone = "Europe/London"
    [[trigger]]
    cron = "0 8 1 * *"              # 08:00 on the first of every month

`load_schedules` returns the campaign schedules (what the plan, reviews and departments read),
`load_report_schedules` the report ones.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Literal

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.errors import ScheduleError
from pipeline.timetable.crontab import CrontabTrigger
from pipeline.workspace.folders import PLAIN_NAME, Workspace
from pipeline.workspace.tomlfile import read_toml, validate

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    """Local hours in which a run may send; END before START wraps past midnight (22:00-06:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        found = _WINDOW.match(text)
        if not found:
            raise ValueError(f'window must look like "09:00-17:00", not {text!r}')
        h1, m1, h2, m2 = (int(part) for part in found.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"window {text!r} has a time that does not exist")
        window = cls(time(h1, m1), time(h2, m2))
        if window.start == window.end:
            raise ValueError(f"window {text!r} is empty: start and end are the same")
        return window

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def is_open(self, moment: datetime, zone: tzinfo) -> bool:
        local = moment.astimezone(zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Trigger:
    """One [[trigger]]: a one-off local time (`at`) or a crontab line (`cron`)."""

    at: datetime | None = None  # aware, in the schedule's zone
    cron: str | None = None

    def __str__(self) -> str:
        return f"at {self.at.isoformat()}" if self.at is not None else f"cron {self.cron}"

    def build(self, zone: tzinfo) -> BaseTrigger:
        """The APScheduler trigger, firing in ZONE's local time."""
        if self.at is not None:
            return DateTrigger(run_date=self.at, timezone=zone)
        assert self.cron is not None
        return CrontabTrigger(self.cron, zone)


@dataclass(frozen=True)
class Schedule:
    name: str
    path: Path  # as shown in messages: relative to the workspace
    campaign: str
    audience: str | None  # None: the copy's own
    timezone: zoneinfo.ZoneInfo
    triggers: tuple[Trigger, ...]
    window: Window | None
    enabled: bool


@dataclass(frozen=True)
class ReportSchedule:
    name: str
    path: Path
    report: str  # "exec"
    period: str  # previous-month, previous-quarter, previous-year
    compare: str  # previous or yoy
    to: tuple[str, ...]
    timezone: zoneinfo.ZoneInfo
    triggers: tuple[Trigger, ...]
    enabled: bool


# -- occurrences -----------------------------------------------------------------------------------


def occurrences(trigger: Trigger, zone: tzinfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """The fire times of TRIGGER from START (inclusive) to END (exclusive), as APScheduler computes them."""
    built = trigger.build(zone)
    moment = built.get_next_fire_time(None, start)
    while moment is not None and moment < start:  # a one-off answers with its time even when past
        moment = built.get_next_fire_time(moment, start) if trigger.cron else None
    while moment is not None and moment < end:
        yield moment
        moment = built.get_next_fire_time(moment, moment + timedelta(microseconds=1))


def latest_occurrence(trigger: Trigger, zone: tzinfo, now: datetime, within: timedelta) -> datetime | None:
    """TRIGGER's last fire time at or before NOW, looking back no further than WITHIN.

    APScheduler 3 does not tell a job which fire time it runs for; the job works it out
    from its own trigger, and only ever runs within the misfire grace of that time.
    """
    latest = None
    for moment in occurrences(trigger, zone, now - within, now + timedelta(microseconds=1)):
        latest = moment
    return latest


# -- loading ---------------------------------------------------------------------------------------


class _TriggerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime | None = None
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CrontabTrigger(value, UTC)
            except ValueError as exc:
                raise ValueError(
                    f"not a crontab line ({exc}): use minute hour day month day-of-week"
                ) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> _TriggerFile:
        if (self.at is None) == (self.cron is None):
            raise ValueError("give either at (a one-off local time) or cron (a crontab line), not both")
        return self


class _TimedFile(BaseModel):
    """What every schedule file has, a campaign's or a report's: when, in which zone, on or off."""

    model_config = ConfigDict(extra="forbid")

    timezone: str
    enabled: bool = True
    trigger: list[_TriggerFile] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Warsaw)") from None
        return value


class _ScheduleFile(_TimedFile):
    campaign: str = Field(pattern=PLAIN_NAME)
    audience: str | None = Field(default=None, pattern=PLAIN_NAME)
    window: str | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            Window.parse(value)
        return value


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _ReportFile(_TimedFile):
    report: Literal["exec"]
    period: Literal["previous-month", "previous-quarter", "previous-year"] = "previous-month"
    compare: Literal["previous", "yoy"] = "previous"
    to: list[str] = Field(min_length=1)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return value


def schedule_names(ws: Workspace) -> list[str]:
    return sorted(p.stem for p in ws.schedules_dir.glob("*.toml"))


def _read(ws: Workspace, name: str) -> tuple[Path, str, dict[str, object]]:
    path = ws.named_file(ws.schedules_dir, name, ".toml", "schedule", ScheduleError)
    shown = ws.relative(path)
    if not path.is_file():
        raise ScheduleError(f"no schedule {name!r}", path=shown)
    text, data = read_toml(path, shown, ScheduleError)
    return shown, text, data


def load_schedule(ws: Workspace, name: str) -> Schedule:
    """Read and validate schedules/NAME.toml; ScheduleError names the file, line and field."""
    shown, text, data = _read(ws, name)
    if "report" in data:
        raise ScheduleError("a report's schedule, not a campaign's", path=shown)
    parsed = validate(_ScheduleFile, text, data, shown, ScheduleError)
    zone = zoneinfo.ZoneInfo(parsed.timezone)
    return Schedule(
        name=name,
        path=shown,
        campaign=parsed.campaign,
        audience=parsed.audience,
        timezone=zone,
        triggers=tuple(_trigger(t, zone) for t in parsed.trigger),
        window=Window.parse(parsed.window) if parsed.window else None,
        enabled=parsed.enabled,
    )


def load_report_schedule(ws: Workspace, name: str) -> ReportSchedule:
    """Read and validate schedules/NAME.toml as a report's schedule (`report = "exec"`)."""
    shown, text, data = _read(ws, name)
    parsed = validate(_ReportFile, text, data, shown, ScheduleError)
    zone = zoneinfo.ZoneInfo(parsed.timezone)
    return ReportSchedule(
        name=name,
        path=shown,
        report=parsed.report,
        period=parsed.period,
        compare=parsed.compare,
        to=tuple(parsed.to),
        timezone=zone,
        triggers=tuple(_trigger(t, zone) for t in parsed.trigger),
        enabled=parsed.enabled,
    )


def _is_report(ws: Workspace, name: str) -> bool:
    return "report" in _read(ws, name)[2]


def load_schedules(ws: Workspace) -> list[Schedule]:
    """Every campaign schedule file, in name order; the first bad one raises."""
    return [load_schedule(ws, name) for name in schedule_names(ws) if not _is_report(ws, name)]


def load_report_schedules(ws: Workspace) -> list[ReportSchedule]:
    """Every report schedule file, in name order; the first bad one raises."""
    return [load_report_schedule(ws, name) for name in schedule_names(ws) if _is_report(ws, name)]


def _trigger(parsed: _TriggerFile, zone: tzinfo) -> Trigger:
    if parsed.at is None:
        return Trigger(cron=parsed.cron)
    at = parsed.at if parsed.at.tzinfo else parsed.at.replace(tzinfo=zone)
    return Trigger(at=at.astimezone(zone))


__all__ = [
    "ReportSchedule",
    "Schedule",
    "Trigger",
    "Window",
    "latest_occurrence",
    "load_report_schedule",
    "load_report_schedules",
    "load_schedule",
    "load_schedules",
    "occurrences",
    "schedule_names",
]
