"""Schedule files: the samples load, and every mistake is one line naming file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.errors import ScheduleError
from pipeline.timetable.schedules import Window, load_schedule, load_schedules, occurrences
from pipeline.workspace.folders import Workspace


def test_the_sample_schedules_load(workspace_dir: Path) -> None:
    loaded = {s.name: s for s in load_schedules(Workspace.open(workspace_dir))}

    launch = loaded["spring-launch-eu"]
    assert (launch.campaign, launch.audience, str(launch.window)) == (
        "spring-launch",
        "customers-eu",
        "09:00-17:00",
    )
    (trigger,) = launch.triggers
    assert trigger.at == datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Warsaw"))
    weekly = loaded["plant-safety-weekly"]
    assert (weekly.audience, weekly.triggers[0].cron) == (None, "30 6 * * MON")


def test_a_weekly_cron_keeps_its_local_hour_across_the_clock_change(workspace_dir: Path) -> None:
    weekly = load_schedule(Workspace.open(workspace_dir), "plant-safety-weekly")
    start = datetime(2027, 3, 20, tzinfo=UTC)

    fired = list(occurrences(weekly.triggers[0], weekly.timezone, start, start + timedelta(days=14)))

    assert [f.strftime("%Y-%m-%d %H:%M %Z") for f in fired] == [
        "2027-03-22 06:30 GMT",
        "2027-03-29 06:30 BST",
    ]


@pytest.mark.parametrize(
    ("weekday", "days"),
    [
        ("1", ["Mon"]),
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("SAT", ["Sat"]),
    ],
)
def test_cron_days_of_week_mean_what_they_mean_in_crontab(
    workspace_dir: Path, weekday: str, days: list[str]
) -> None:
    (workspace_dir / "schedules" / "weekly.toml").write_text(
        f'campaign = "spring-launch"\ntimezone = "Europe/Warsaw"\n[[trigger]]\ncron = "0 9 * * {weekday}"\n'
    )
    weekly = load_schedule(Workspace.open(workspace_dir), "weekly")
    start = datetime(2027, 1, 3, 12, tzinfo=UTC)  # a Sunday afternoon

    fired = list(occurrences(weekly.triggers[0], weekly.timezone, start, start + timedelta(days=7)))

    assert [f.strftime("%a %H:%M") for f in fired] == [f"{day} 09:00" for day in days]


def test_day_of_month_and_day_of_week_together_match_either_as_in_crontab(workspace_dir: Path) -> None:
    # crontab(5): when both are restricted, a day matching either runs the command. APScheduler's
    # own CronTrigger wants both, and fired `0 9 1 * MON` once in 40 days.
    (workspace_dir / "schedules" / "monthly.toml").write_text(
        'campaign = "spring-launch"\ntimezone = "Europe/Warsaw"\n[[trigger]]\ncron = "0 9 1 * MON"\n'
    )
    monthly = load_schedule(Workspace.open(workspace_dir), "monthly")
    start = datetime(2027, 1, 1, tzinfo=UTC)

    fired = list(occurrences(monthly.triggers[0], monthly.timezone, start, start + timedelta(days=40)))

    assert [f"{f:%a %d %b}" for f in fired] == [
        "Fri 01 Jan", "Mon 04 Jan", "Mon 11 Jan", "Mon 18 Jan", "Mon 25 Jan", "Mon 01 Feb", "Mon 08 Feb",
    ]  # fmt: skip
    assert all(f"{f:%H:%M %Z}" == "09:00 CET" for f in fired)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'campaign = "x"\ntimezone = "Mars/Olympus"\n[[trigger]]\ncron = "0 9 * * *"\n',
            ":2: timezone: unknown time zone",
        ),
        (
            'campaign = "x"\ntimezone = "UTC"\n[[trigger]]\ncron = "0 25 * * *"\n',
            ":4: trigger #1 cron: not a crontab line",
        ),
        (
            'campaign = "x"\ntimezone = "UTC"\n[[trigger]]\nat = "2027-01-01T09:00"\ncron = "0 9 * * *"\n',
            ":3: trigger #1: give either at",
        ),
        (
            'campaign = "x"\ntimezone = "UTC"\nwindow = "9-17"\n[[trigger]]\ncron = "0 9 * * *"\n',
            ":3: window: window must look like",
        ),
        (
            'campaign = "x"\ntimezone = "UTC"\nwhen = "now"\n[[trigger]]\ncron = "0 9 * * *"\n',
            ":3: when: Extra inputs",
        ),
        ('campaign = "x"\ntimezone = "UTC"\n', "trigger: Field required"),
        (
            'campaign = "x"\ntimezone = "UTC"\n[[trigger]]\nat = "next tuesday"\n',
            ":4: trigger #1 at: Input should be",
        ),
    ],
)
def test_mistakes_name_the_file_line_and_field(workspace_dir: Path, body: str, expected: str) -> None:
    (workspace_dir / "schedules" / "bad.toml").write_text(body, encoding="utf-8")

    with pytest.raises(ScheduleError) as caught:
        load_schedule(Workspace.open(workspace_dir), "bad")

    assert str(caught.value).startswith("schedules/bad.toml")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_window_may_wrap_past_midnight() -> None:
    night = Window.parse("22:00-06:00")
    zone = ZoneInfo("Europe/Warsaw")

    assert night.is_open(datetime(2027, 1, 1, 23, 30, tzinfo=zone), zone)
    assert night.is_open(datetime(2027, 1, 1, 5, 59, tzinfo=zone), zone)
    assert not night.is_open(datetime(2027, 1, 1, 6, 0, tzinfo=zone), zone)
