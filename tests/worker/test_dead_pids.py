"""A worker killed with SIGKILL: a worker of the same host sees its pid gone and returns
its jobs at once, as lost deliveries, instead of after their 30 s lease (before, a job
stayed STARTED for 38 s after its worker was killed and restarted in a second).

Real worker subprocesses, a real SIGKILL, on every backend several processes share."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.job import Job
from conveyor.records import WorkerInfo
from conveyor.task import Signature

from .conftest import SpawnWorker, ledger_lines, running, wait_until

pytestmark = pytest.mark.slow
#: The test app's lease (tests.apps.longlease); a job must be back well before it.
LEASE = 30.0
BACK_WITHIN = 5.0


LONG_LEASE = "tests.apps.longlease:app"


def cause_of(pid: int) -> dict[str, str]:
    message = f"its worker (pid {pid} on this host) is gone; it went back to its queue"
    return {"type": "WorkerLost", "message": message}


def entry_of(app: App, pid: int) -> WorkerInfo | None:
    return next((w for w in app.backend.workers() if w.pid == pid), None)


def long_job(producer: App, ledger: Path) -> Job:
    return producer.enqueue_many([Signature("t.ledger", (str(ledger), 60.0))])[0]


def test_a_worker_of_the_same_host_returns_a_killed_workers_job_at_once(
    producer: App, spawn_worker: SpawnWorker, ledger: Path
) -> None:
    survivor = spawn_worker("-Q", "other", "-P", "thread", "-c", "1", app=LONG_LEASE)
    victim = spawn_worker("-Q", "default", "-c", "1", app=LONG_LEASE)
    job = long_job(producer, ledger)
    wait_until(lambda: running(ledger), 30, "the job to start")
    for proc in (survivor, victim):  # a pool child may start the job before its worker registers
        wait_until(lambda: entry_of(producer, proc.pid), 30, "both workers to register")  # noqa: B023
    assert producer.backend.get(job.id).state is State.STARTED
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed = time.monotonic()
    wait_until(lambda: job.state is State.PENDING, LEASE, "the job to be returned")
    took = time.monotonic() - killed
    assert took < BACK_WITHIN, f"returned {took:.1f}s after the kill (its lease: {LEASE:.0f}s)"
    record = job.record()
    assert record.lost_leases == 1  # a lost delivery, counted
    assert record.attempts[-1]["error"] == cause_of(victim.pid)
    log = survivor.log_path.read_bytes()  # type: ignore[attr-defined]
    assert b"returned 1 job(s) of worker" in log
    assert job.id.encode() in log


def test_a_worker_restarted_by_up_runs_the_killed_ones_job_again_at_once(
    producer: App, spawn_worker: SpawnWorker, ledger: Path
) -> None:
    up = spawn_worker("--no-web", "--no-scheduler", "-w", "default:1", app=LONG_LEASE, command="up")
    job = long_job(producer, ledger)
    wait_until(lambda: running(ledger), 30, "the job to start")
    first = wait_until(lambda: next(iter(producer.backend.workers()), None), 30, "the worker")
    os.kill(first.pid, signal.SIGKILL)  # the worker alone: its supervisor restarts it
    killed = time.monotonic()

    def started_twice() -> bool:
        return [line[0] for line in ledger_lines(ledger)].count("start") == 2

    wait_until(started_twice, LEASE, "the job to run again")
    took = time.monotonic() - killed
    assert took < BACK_WITHIN, f"ran again {took:.1f}s after the kill (its lease: {LEASE:.0f}s)"
    record = job.record()
    assert record.state is State.STARTED
    assert record.lost_leases == 1
    assert cause_of(first.pid) in [a.get("error") for a in record.attempts]
    assert up.poll() is None


@pytest.mark.parametrize(
    "turned_off", [("--no-dead-pids",), ("CONVEYOR_DEAD_PIDS", "0")], ids=["flag", "env"]
)
def test_a_worker_told_not_to_judge_pids_leaves_a_killed_workers_job_to_its_lease(
    producer: App, spawn_worker: SpawnWorker, ledger: Path, turned_off: tuple[str, ...]
) -> None:
    """For a host whose /proc is not to be trusted: by the flag or the env var."""
    flags, env = (turned_off, {}) if len(turned_off) == 1 else ((), dict([turned_off]))
    survivor = spawn_worker(
        "-Q", "other", "-P", "thread", "-c", "1", *flags, app=LONG_LEASE, env=env
    )
    victim = spawn_worker("-Q", "default", "-c", "1", app=LONG_LEASE)
    job = long_job(producer, ledger)
    wait_until(lambda: running(ledger), 30, "the job to start")
    for proc in (survivor, victim):
        wait_until(lambda: entry_of(producer, proc.pid), 30, "both workers to register")  # noqa: B023
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    time.sleep(BACK_WITHIN)  # the survivor's rescue turns every 0.3 s: over a dozen of them
    assert job.state is State.STARTED  # left to its 30 s lease
    log = survivor.log_path.read_text()  # type: ignore[attr-defined]
    assert "returned" not in log
    assert "dead pids    not judged (--no-dead-pids)" in log
