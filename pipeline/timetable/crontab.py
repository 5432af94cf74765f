"""Crontab lines read as crontab(5) reads them, for APScheduler to run.

APScheduler's CronTrigger is not crontab: its days of the week start at Monday, and when both
day of month and day of week are restricted it fires when both match, where cron fires when
either does (`0 9 1 * MON`: the 1st and every Monday). cronsim follows Debian's cron, DST
transitions included, so comms computes the times with it and keeps APScheduler for running jobs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from cronsim import CronSim, CronSimError

_JUST_BEFORE = timedelta(microseconds=1)


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """Fires at LINE's times in ZONE's local time. Pickled into the job store: plain fields only."""

    def __init__(self, line: str, zone: tzinfo) -> None:
        fields = line.split()
        if len(fields) != 5:
            raise ValueError(f"{len(fields)} fields, expected 5")
        try:
            CronSim(line, datetime.now(zone))
        except CronSimError as exc:
            raise ValueError(str(exc).lower()) from None
        self.line = line
        self.zone = zone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first time after PREVIOUS_FIRE_TIME, or at or after NOW when there is none."""
        start = previous_fire_time if previous_fire_time is not None else now - _JUST_BEFORE
        try:
            return next(CronSim(self.line, start.astimezone(self.zone)))
        except StopIteration:  # no match within cronsim's 50 years (e.g. 30 February)
            return None

    def __str__(self) -> str:
        return f"crontab[{self.line}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.line!r}, timezone={self.zone!s})>"
