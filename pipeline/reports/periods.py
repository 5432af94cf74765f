"""Report periods: `2027-Q1`, `2027-03`, `2027`, `last-30d`, as half-open UTC intervals [start, end).

`previous-month`, `previous-quarter` and `previous-year` name the last complete calendar one
before now (what a schedule mailing a monthly report wants), as the period they are: `2027-02`...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.errors import ReportError

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^(\d{4})$")
_LAST = re.compile(r"^last-(\d{1,4})d$")
_RELATIVE = ("previous-month", "previous-quarter", "previous-year")


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime
    end: datetime

    @property
    def weeks(self) -> float:
        return (self.end - self.start).total_seconds() / (7 * 86400)


def _month_start(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def parse_period(text: str, now: datetime) -> Period:
    """TEXT as a Period; ReportError says which forms are understood."""
    text = text.strip()
    if found := _QUARTER.match(text):
        year, quarter = int(found[1]), int(found[2])
        start = _month_start(year, 3 * quarter - 2)
        return Period(text, start, _month_start(year, 3 * quarter + 1))
    if found := _MONTH.match(text):
        year, month = int(found[1]), int(found[2])
        return Period(text, _month_start(year, month), _month_start(year, month + 1))
    if found := _YEAR.match(text):
        year = int(found[1])
        return Period(text, _month_start(year, 1), _month_start(year + 1, 1))
    if text in _RELATIVE:
        this = {"previous-month": month_of, "previous-quarter": quarter_of, "previous-year": year_of}[text]
        return previous(this(now))
    if (found := _LAST.match(text)) and int(found[1]) > 0:
        end = now.astimezone(UTC)
        return Period(text, end - timedelta(days=int(found[1])), end)
    raise ReportError(
        f"period {text!r}: use YYYY-Qn (2027-Q1), YYYY-MM (2027-03), YYYY, last-Nd (last-30d) "
        "or previous-month, previous-quarter, previous-year"
    )


def previous(period: Period) -> Period:
    """The period of the same length just before PERIOD (the previous quarter for a quarter...)."""
    if _QUARTER.match(period.label):
        start = _month_start(period.start.year, period.start.month - 3)
        return Period(f"{start.year}-Q{(start.month - 1) // 3 + 1}", start, period.start)
    if _MONTH.match(period.label):
        start = _month_start(period.start.year, period.start.month - 1)
        return Period(f"{start.year}-{start.month:02d}", start, period.start)
    if _YEAR.match(period.label):
        return Period(str(period.start.year - 1), _month_start(period.start.year - 1, 1), period.start)
    length = period.end - period.start
    return Period(f"{period.label} before", period.start - length, period.start)


def year_before(period: Period) -> Period:
    """PERIOD one year earlier (year-over-year)."""

    def back(moment: datetime) -> datetime:
        try:
            return moment.replace(year=moment.year - 1)
        except ValueError:  # 29 February
            return moment.replace(year=moment.year - 1, day=28)

    start, end = back(period.start), back(period.end)
    label = (
        period.label.replace(str(period.start.year), str(start.year), 1)
        if not _LAST.match(period.label)
        else f"{period.label} a year before"
    )
    return Period(label, start, end)


def quarter_of(moment: datetime) -> Period:
    """The calendar quarter (UTC) MOMENT falls in."""
    at = moment.astimezone(UTC)
    return parse_period(f"{at.year}-Q{(at.month - 1) // 3 + 1}", at)


def month_of(moment: datetime) -> Period:
    """The calendar month (UTC) MOMENT falls in."""
    at = moment.astimezone(UTC)
    return parse_period(f"{at.year}-{at.month:02d}", at)


def year_of(moment: datetime) -> Period:
    """The calendar year (UTC) MOMENT falls in."""
    at = moment.astimezone(UTC)
    return parse_period(str(at.year), at)
