"""Tick arithmetic: intervals, cron in time zones across DST, misfire policies, validation."""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor.errors import SerializationError
from conveyor.ids import new_id
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


def test_a_ticks_job_id_is_a_uuid7_of_the_tick_the_same_in_every_scheduler() -> None:
    tick = 1_700_000_000.0
    fired = job_id("nightly", tick)
    assert fired == job_id("nightly", tick)  # what makes two schedulers fire a tick once
    parsed = uuid.UUID(fired)
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, fired)
    assert parsed.int >> 80 == 1_700_000_000_000  # the tick's millisecond
    assert len({fired, job_id("nightly", tick + 0.001), job_id("hourly", tick)}) == 3


def test_a_ticks_job_id_sorts_with_the_ids_made_at_its_tick() -> None:
    older = new_id()
    time.sleep(0.003)
    tick = time.time()
    time.sleep(0.003)
    assert older < job_id("heartbeat", tick) < new_id()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of cron"),
        ({"cron": "0 1 * * *", "every": 5}, "exactly one of cron"),
        ({"cron": "61 * * * *"}, "is not valid"),
        ({"cron": "0 1 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": 0.5}, "every must be 1 s to 366 days"),
        ({"every": float("nan")}, "every must be 1 s to .*not nan"),
        ({"every": float("inf")}, "every must be 1 s to .*not inf"),
        ({"every": 1e999}, "every must be 1 s to"),
        ({"every": 367 * 86400}, r"every must be 1 s to 366 days \(a year\)"),
        ({"every": True}, "every must be"),
        ({"every": 5, "misfire_grace": float("nan")}, "misfire_grace must be a number of seconds"),
        ({"every": 5, "misfire": "sometimes"}, "misfire must be one of"),
        ({"every": 5, "options": {"countdown": 3}}, "options may be"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule("s", "t", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cron", "said"),
    [
        ("0 25 * * *", "the hour field is '25'; it takes 0-23, as a value, a list a,b, a range "
         "a-b, or a step */n or a-b/n"),
        ("61 * * * *", "the minute field is '61'; it takes 0-59"),
        ("0 1,25 * * *", "the hour field is '1,25'; it takes 0-23"),
        ("0 0 32 * *", "the day-of-month field is '32'; it takes 1-31, L (the last day) or LW"),
        ("0 0 30 2 *", "the day-of-month field is '30', a day no month of the month field ('2') has"),
        ("0 0 * 13 *", "the month field is '13'; it takes 1-12 or JAN-DEC"),
        ("0 0 * * MON#6", "the day-of-week field is 'MON#6'; it takes 0-7 (0 and 7 are Sunday)"),
        ("0 0 * * 8", "the day-of-week field is '8'"),
        ("0 0 * *", "it has 4 field(s); give 5, separated by spaces: minute hour day-of-month "
         "month day-of-week (e.g. '0 2 * * *' is 02:00 every day)"),
        ("61 0 0 * * *", "the second field is '61'; it takes 0-59"),
    ],
)  # fmt: skip
def test_a_bad_cron_names_its_field_value_and_range(cron: str, said: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        Schedule("nightly", "t", cron=cron)
    message = str(refused.value)
    assert message.startswith(f"schedule 'nightly': cron {cron!r} is not valid: "), message
    assert said in message


def test_schedule_arguments_must_survive_json() -> None:
    with pytest.raises(SerializationError):
        Schedule("s", "t", every=5, args=[{1, 2}])


def test_the_code_hash_covers_what_a_declaration_sets_not_the_defaults() -> None:
    @dataclass
    class Later(Schedule):  # a later version adds a field, with a default
        jitter: float = 0.0

    declared = {"cron": "0 1 * * *", "tz": "Europe/Berlin", "args": ["full"], "source": "code"}
    today = Schedule("nightly", "reports.daily", **declared).code_hash()  # type: ignore[arg-type]
    assert Later("nightly", "reports.daily", **declared).code_hash() == today  # type: ignore[arg-type]
    set_ = Later("nightly", "reports.daily", jitter=5.0, **declared)  # type: ignore[arg-type]
    assert set_.code_hash() != today
    plain = Schedule("n", "t", every=5).code_hash()
    assert Schedule("n", "t", every=5, tz="UTC").code_hash() == plain  # a default, said
    assert Schedule("n", "t", every=5, paused=True).code_hash() == plain  # a pause is runtime's
