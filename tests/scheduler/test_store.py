"""Real scheduler processes on a store they share with another app, or that loses them:
two apps keep each other's code schedules and each fires only its own; a Redis restarted without persistence gets
the running scheduler's code schedules back; an outage is one account in its log."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import App
from conveyor.records import JobQuery

from ..conftest import backend_url, discard
from ..services import _free_port, start_redis_server
from ..worker.conftest import wait_until

pytestmark = pytest.mark.slow
Spawn = Callable[..., subprocess.Popen[bytes]]


def log(proc: subprocess.Popen[bytes]) -> str:
    path: Path = proc.log_path  # type: ignore[attr-defined]
    return path.read_text()


def ticks_since(app: App, schedule: str, since: float) -> list[float]:
    jobs = app.backend.list_jobs(JobQuery(limit=5000))
    return [
        t
        for j in jobs
        if j.headers.get("schedule") == schedule and (t := j.headers["tick"]) >= since
    ]


def jobs_of(app: App, schedule: str) -> list[str]:
    jobs = app.backend.list_jobs(JobQuery(limit=5000))
    return [j.queue for j in jobs if j.headers.get("schedule") == schedule]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[str]:
    url = backend_url("redis", tmp_path)
    yield url
    discard(url)


@pytest.mark.timeout(120)
def test_two_apps_on_one_store_keep_and_fire_only_their_own_schedules(
    shared: str, tmp_path: Path, conveyor_proc: Spawn
) -> None:
    env = {"CONVEYOR_BACKEND": shared, "TICK_LEDGER": str(tmp_path / "ticks.txt")}
    observer = App("observer", backend=shared)
    first = conveyor_proc("-A", "tests.apps.sched:app", "scheduler", env=env)
    wait_until(lambda: "tick" in observer.backend.schedules(), 20, "the first app's schedule")
    second = conveyor_proc("-A", "tests.apps.sched_other:app", "scheduler", env=env)
    wait_until(lambda: "other-tick" in observer.backend.schedules(), 20, "the second's")
    since = time.time() + 1
    # Each app's scheduler leads for its own app and fires its own schedule, to its own
    # app's queue. Before, the second app's start deleted `tick` ("no longer declared in
    # code"); later, whichever led fired both, so a scheduler fired another app's
    # schedule into a queue nothing of its own consumed.
    wait_until(lambda: len(ticks_since(observer, "tick", since)) >= 3, 20, "ticks of `tick`")
    wait_until(lambda: len(ticks_since(observer, "other-tick", since)) >= 3, 20, "`other-tick`")
    stored = observer.backend.schedules()
    assert {n: s["app"] for n, (s, _) in stored.items()} == {
        "tick": "sched-tests",
        "other-tick": "sched-other",
    }
    assert set(jobs_of(observer, "other-tick")) == {"other"}, "routed by its own app"
    assert set(jobs_of(observer, "tick")) == {"default"}
    for proc, own, foreign in ((first, "tick", "other-tick"), (second, "other-tick", "tick")):
        text = log(proc)
        assert ["is now the leader" in text, "deleted" in text] == [True, False], text
        assert [f"schedule {own}: enqueued" in text, f"schedule {foreign}:" in text] == [
            True,
            False,
        ], text
    # The second's banner says the store holds the first's, which it does not fire.
    assert "holds other apps' schedules: app 'sched-tests': 1 (tick);" in log(second)
    # Only the second app's scheduler running: the first app's schedule does not fire.
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    stopped = time.time() + 1
    wait_until(lambda: len(ticks_since(observer, "other-tick", stopped)) >= 3, 20, "`other-tick`")
    assert ticks_since(observer, "tick", stopped) == []
    assert "schedule tick:" not in log(second)
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0


class OwnRedis:
    """A throwaway redis-server without persistence on a port of its own (never the
    shared server): ``start`` (again: empty, as a restart without persistence), ``stop``."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.server = start_redis_server(self.port)[0]
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
            self.server = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis()
    yield redis
    redis.stop()


@pytest.fixture
def scheduler(own_redis: OwnRedis, tmp_path: Path, conveyor_proc: Spawn) -> subprocess.Popen[bytes]:
    """A `conveyor scheduler` of tests.apps.sched (a 1 s schedule) on its own Redis."""
    url = own_redis.start()
    env = {"CONVEYOR_BACKEND": url, "TICK_LEDGER": str(tmp_path / "ticks.txt")}
    proc = conveyor_proc("-A", "tests.apps.sched:app", "scheduler", env=env)
    wait_until(lambda: "is now the leader" in log(proc), 20, "the lead")
    return proc


def errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR " in line]


@pytest.mark.timeout(90)
def test_a_store_restarted_empty_gets_the_code_schedules_back(
    own_redis: OwnRedis, scheduler: subprocess.Popen[bytes]
) -> None:
    observer = App("observer", backend=own_redis.url)
    wait_until(lambda: jobs_of(observer, "tick"), 20, "the first tick")
    own_redis.stop()
    own_redis.start()  # empty: no schedule, no lock, no job
    # Before, the lock came back at the next renewal but the schedule never did: no
    # tick fired again, and nothing was logged.
    wait_until(lambda: jobs_of(observer, "tick"), 20, "a tick after the restart")
    said = log(scheduler)
    line = next(x for x in said.splitlines() if "no longer stored" in x)
    assert " WARNING " in line, said
    assert "tick: declared in code" in line
    assert "the store lost them" in line


@pytest.mark.timeout(90)
def test_an_outage_is_one_account_in_the_schedulers_log(
    own_redis: OwnRedis, scheduler: subprocess.Popen[bytes]
) -> None:
    own_redis.stop()
    time.sleep(5)  # the duration under test: a step fails about once a second
    # Before, an ERROR per failed step (5 here, 15 in 15 s for a new user).
    said = errors(log(scheduler))
    assert len(said) == 1, log(scheduler)
    assert "backend calls fail: a scheduler step failed" in said[0]
    assert "no schedule fires meanwhile" in said[0]
    own_redis.start()
    wait_until(lambda: "the backend answers again" in log(scheduler), 20, "the recovery")
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(30) == 0
