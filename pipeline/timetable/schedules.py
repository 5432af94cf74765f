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
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path

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


class _ScheduleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: str = Field(pattern=PLAIN_NAME)
    audience: str | None = Field(default=None, pattern=PLAIN_NAME)
    timezone: str
    window: str | None = None
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

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            Window.parse(value)
        return value


def schedule_names(ws: Workspace) -> list[str]:
    return sorted(p.stem for p in ws.schedules_dir.glob("*.toml"))


def load_schedule(ws: Workspace, name: str) -> Schedule:
    """Read and validate schedules/NAME.toml; ScheduleError names the file, line and field."""
    path = ws.named_file(ws.schedules_dir, name, ".toml", "schedule", ScheduleError)
    shown = ws.relative(path)
    if not path.is_file():
        raise ScheduleError(f"no schedule {name!r}", path=shown)
    text, data = read_toml(path, shown, ScheduleError)
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


def load_schedules(ws: Workspace) -> list[Schedule]:
    """Every schedule file, in name order; the first bad one raises."""
    return [load_schedule(ws, name) for name in schedule_names(ws)]


def _trigger(parsed: _TriggerFile, zone: tzinfo) -> Trigger:
    if parsed.at is None:
        return Trigger(cron=parsed.cron)
    at = parsed.at if parsed.at.tzinfo else parsed.at.replace(tzinfo=zone)
    return Trigger(at=at.astimezone(zone))


__all__ = [
    "Schedule",
    "Trigger",
    "Window",
    "latest_occurrence",
    "load_schedule",
    "load_schedules",
    "occurrences",
    "schedule_names",
]
