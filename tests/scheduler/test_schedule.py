"""Tick arithmetic: intervals, cron in time zones across DST, misfire policies, validation."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor.errors import SerializationError
from conveyor.scheduler import Schedule, ScheduleError, job_id

BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int, tz: ZoneInfo = BERLIN, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=tz, fold=fold).timestamp()  # type: ignore[misc]


def local(ticks: list[float]) -> list[str]:
    return [datetime.fromtimestamp(t, BERLIN).strftime("%m-%d %H:%M%z") for t in ticks]


def test_interval_ticks_are_epoch_aligned() -> None:
    s = Schedule("s", "t", every=30)
    assert s.ticks(1000.0, 1100.0) == [1020.0, 1050.0, 1080.0]
    assert s.ticks(1020.0, 1020.0) == []  # strictly after, up to and including
    assert s.next_tick(1020.0) == 1050.0


def test_daily_job_in_the_skipped_hour_runs_once_on_spring_forward_day() -> None:
    s = Schedule("s", "t", cron="30 2 * * *", tz="Europe/Berlin")
    ticks = s.ticks(at(2026, 3, 28, 12, 0), at(2026, 3, 30, 12, 0))
    assert local(ticks) == ["03-29 03:00+0200", "03-30 02:30+0200"]


def test_daily_job_in_the_repeated_hour_runs_once_on_fall_back_day() -> None:
    s = Schedule("s", "t", cron="30 2 * * *", tz="Europe/Berlin")
    ticks = s.ticks(at(2026, 10, 24, 12, 0), at(2026, 10, 26, 12, 0))
    assert local(ticks) == ["10-25 02:30+0200", "10-26 02:30+0100"]


def test_hourly_job_runs_in_both_repeated_hours_and_skips_nothing() -> None:
    s = Schedule("s", "t", cron="0 * * * *", tz="Europe/Berlin")
    fall = s.ticks(at(2026, 10, 25, 0, 30), at(2026, 10, 25, 4, 30))
    assert local(fall) == [
        "10-25 01:00+0200",
        "10-25 02:00+0200",
        "10-25 02:00+0100",
        "10-25 03:00+0100",
        "10-25 04:00+0100",
    ]
    assert [b - a for a, b in itertools.pairwise(fall)] == [3600.0] * 4  # one per real hour
    spring = s.ticks(at(2026, 3, 29, 0, 30), at(2026, 3, 29, 4, 30))
    assert local(spring) == ["03-29 01:00+0100", "03-29 03:00+0200", "03-29 04:00+0200"]


def test_misfire_policies_after_downtime() -> None:
    now = at(2026, 5, 10, 12, 0)
    due = Schedule("s", "t", cron="0 1 * * *").ticks(now - 3 * 86400, now)
    assert len(due) == 3
    assert Schedule("s", "t", cron="0 1 * * *", misfire="once").to_fire(due, now) == due[-1:]
    assert Schedule("s", "t", cron="0 1 * * *", misfire="all").to_fire(due, now) == due
    assert Schedule("s", "t", cron="0 1 * * *", misfire="skip").to_fire(due, now) == []
    short_gap = [now - 5, now - 4, now - 3]  # a failover: younger than the grace, all fire
    assert Schedule("s", "t", every=1, misfire="skip").to_fire(short_gap, now) == short_gap


def test_catch_up_is_bounded() -> None:
    s = Schedule("s", "t", every=1)
    ticks = s.ticks(0.0, 10 * 86400.0)
    assert len(ticks) == 1000
    assert ticks[-1] == 10 * 86400.0


def test_job_ids_are_derived_from_schedule_and_tick() -> None:
    assert (
        job_id("nightly", 1_700_000_000.0)
        == job_id("nightly", 1_700_000_000.0)
        == "schedule:nightly:1700000000000"
    )
    assert job_id("nightly", 1_700_000_001.0) != job_id("nightly", 1_700_000_000.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of cron"),
        ({"cron": "0 1 * * *", "every": 5}, "exactly one of cron"),
        ({"cron": "61 * * * *"}, "is not valid"),
        ({"cron": "0 1 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": 0.5}, "at least 1.0"),
        ({"every": 5, "misfire": "sometimes"}, "misfire must be one of"),
        ({"every": 5, "options": {"countdown": 3}}, "options may be"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule("s", "t", **fields)  # type: ignore[arg-type]


def test_schedule_arguments_must_survive_json() -> None:
    with pytest.raises(SerializationError):
        Schedule("s", "t", every=5, args=[{1, 2}])
