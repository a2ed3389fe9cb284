"""Real scheduler processes: several at once fire each tick once; a killed leader is replaced."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import App
from conveyor.records import JobQuery

from ..conftest import backend_url, discard
from ..worker.conftest import wait_until

pytestmark = pytest.mark.slow
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite store, or the kind a test names (``indirect`` parametrization)."""
    made = backend_url(getattr(request, "param", "sqlite"), tmp_path)
    yield made
    discard(made)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ticks.txt"


@pytest.fixture
def spawn(url: str, ledger: Path, conveyor_proc: Spawn) -> Spawn:
    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return conveyor_proc(
            "-A",
            "tests.apps.sched:app",
            *args,
            env={"CONVEYOR_BACKEND": url, "TICK_LEDGER": str(ledger), **(env or {})},
        )

    return start


def log(proc: subprocess.Popen[bytes]) -> str:
    path: Path = proc.log_path  # type: ignore[attr-defined]
    return path.read_text()


def tick_jobs(app: App) -> list[float]:
    jobs = app.backend.list_jobs(JobQuery(limit=5000))
    return sorted(j.headers["tick"] for j in jobs if j.headers.get("schedule") == "tick")


def assert_consecutive(ticks: list[float]) -> None:
    assert ticks, "no tick fired"
    assert len(set(ticks)) == len(ticks)
    assert [b - a for a, b in itertools.pairwise(ticks)] == [1.0] * (len(ticks) - 1), (
        "a tick is missing"
    )


@pytest.mark.timeout(180)
def test_two_schedulers_for_a_minute_fire_every_tick_exactly_once(
    url: str, ledger: Path, spawn: Spawn
) -> None:
    app = App("observer", backend=url)
    worker = spawn("worker", "-P", "thread", "-c", "4")
    # The default TTL: a leader renews every second, so only a stall of 10 s (not CI load)
    # hands the lead over; failover itself is the next test's subject.
    first, second = spawn("scheduler", "--lock-ttl", "10"), spawn("scheduler", "--lock-ttl", "10")
    wait_until(lambda: tick_jobs(app), 20, "the first tick")
    time.sleep(60)  # the duration under test, not a wait for a condition
    # One leader for the whole minute, read before they stop: a leader hands its lock over
    # as it stops, and the other may take it before its own SIGTERM lands.
    leaders = [("is now the leader" in log(p)) for p in (first, second)].count(True)
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    ticks = tick_jobs(app)
    assert len(ticks) >= 58
    assert_consecutive(ticks)
    wait_until(
        lambda: len(ledger.read_text().splitlines()) >= len(ticks), 30, "every tick job to run"
    )
    runs = Counter(float(line) for line in ledger.read_text().splitlines())
    assert sorted(runs) == ticks
    assert set(runs.values()) == {1}  # each tick ran once
    assert leaders == 1
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_standby_takes_over_when_the_leader_is_killed(url: str, spawn: Spawn) -> None:
    app = App("observer", backend=url)
    leader = spawn("scheduler", "--lock-ttl", "3")
    wait_until(lambda: len(tick_jobs(app)) >= 3, 20, "the leader to fire")
    standby = spawn("scheduler", "--lock-ttl", "3")
    wait_until(
        lambda: "scheduler" in log(standby) and "started" in log(standby),
        20,
        "the standby to start",
    )
    os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()
    killed_at = time.time()
    wait_until(lambda: "is now the leader" in log(standby), 10, "the standby to take the lead")
    took_over = time.time() - killed_at
    assert took_over < 3 + 1.5  # the lock TTL, plus one standby poll
    wait_until(lambda: tick_jobs(app)[-1] >= time.time() - 1.5, 10, "ticks after the takeover")
    assert_consecutive(tick_jobs(app))  # the gap's ticks fired late, none lost
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(20) == 0


@pytest.mark.parametrize("url", ["sqlite", "redis"], indirect=True)
def test_a_runtime_edit_survives_restarts_until_the_declaration_changes(
    url: str, spawn: Spawn
) -> None:
    stored = App("observer", backend=url).backend.schedules

    def restart(previous: subprocess.Popen[bytes] | None, **env: str) -> subprocess.Popen[bytes]:
        if previous is not None:
            previous.send_signal(signal.SIGTERM)
            assert previous.wait(20) == 0
        proc = spawn("scheduler", env=env)
        wait_until(lambda: "is now the leader" in log(proc), 20, "the scheduler to lead")
        return proc

    scheduler = restart(None)
    assert "schedule tick: added from code" in log(scheduler)
    edit = spawn("schedules", "edit", "tick", "--cron", "*/2 * * * *")
    assert edit.wait(30) == 0, log(edit)
    scheduler = restart(scheduler)  # a restart, as a leader takeover, syncs the code
    assert (stored()["tick"][0]["cron"], stored()["tick"][0]["every"]) == ("*/2 * * * *", None)
    assert "from code" not in log(scheduler)
    scheduler = restart(scheduler, TICK_EVERY="3")  # new code: its declaration wins
    assert (stored()["tick"][0]["cron"], stored()["tick"][0]["every"]) == (None, 3.0)
    assert (
        "schedule tick: updated from code (its declaration changed), replacing the runtime edit"
        in log(scheduler)
    )
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(20) == 0
