"""Stopping a running job in the pools that run it in a thread (thread, solo, and sync
tasks in the async pool): terminate and time limits are raised in the job's thread,
land only while it runs that job, and the record says what happened when they could
not stop it (a call into C code, a task that caught the exception)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor import App, State
from conveyor.errors import TaskControl, Terminated
from conveyor.worker import Worker
from conveyor.worker.limits import ThreadRun

from .conftest import ledger_lines, wait_until

Start = Callable[..., tuple[Worker, threading.Thread]]
THREAD_POOLS = ["thread", "solo", "async"]


def lines(ledger: Path, job_id: str) -> list[str]:
    return [line[0] for line in ledger_lines(ledger) if line[1] == job_id]


def error_of(app: App, job_id: str) -> dict[str, Any]:
    error = app.backend.get(job_id).error
    assert error is not None
    return error


def ran_for(app: App, job_id: str) -> float:
    record = app.backend.get(job_id)
    assert record.started_at is not None
    assert record.finished_at is not None
    return record.finished_at - record.started_at


def started(ledger: Path, job_id: str) -> Callable[[], bool]:
    return lambda: "start" in lines(ledger, job_id)


def revoke_and_time(app: App, job_id: str, ledger: Path, within: float) -> float:
    """Revoke ``job_id`` once it runs; seconds until it ended (fails after ``within``)."""
    wait_until(started(ledger, job_id), 10, "the job to start")
    revoked_at = time.monotonic()
    app.job(job_id).revoke(terminate=True)
    wait_until(lambda: app.backend.get(job_id).state.finished, within, "the job to end")
    return time.monotonic() - revoked_at


def terminated(app: App, task: str, ledger: Path, seconds: float) -> tuple[str, dict[str, Any]]:
    """Run ``task`` (ledger, seconds), revoke it with terminate as it runs; it must end
    REVOKED. Its id and error."""
    job = app.send_task(task, (str(ledger), seconds))
    revoke_and_time(app, job.id, ledger, within=10)
    assert job.state is State.REVOKED
    return job.id, error_of(app, job.id)


@pytest.mark.parametrize("pool", THREAD_POOLS)
def test_terminate_stops_a_python_job_in_its_thread_and_the_next_job_runs(
    worker_app: App, start_worker: Start, ledger: Path, pool: str
) -> None:
    start_worker(pool=pool, concurrency=1)
    long = worker_app.send_task("t.stoppable", (str(ledger), 30))
    after = worker_app.send_task("t.stoppable", (str(ledger), 0.3))  # same thread, next
    took = revoke_and_time(worker_app, long.id, ledger, within=5)
    assert long.state is State.REVOKED
    error = error_of(worker_app, long.id)
    assert (error["type"], error["interrupted"]) == ("Terminated", True)
    assert "it stopped the task there" in error["message"]
    assert lines(ledger, long.id) == ["start", "finally"]  # its finally ran; it never ended
    assert after.get(timeout=10) == "finished"  # the exception never reached it
    assert lines(ledger, after.id) == ["start", "end", "finally"]
    print(f"{pool}: revoke() to REVOKED {took * 1000:.0f} ms")


@pytest.mark.parametrize("pool", ["thread", "solo"])
def test_terminate_cancels_a_coroutine_task_in_a_thread_pool(
    worker_app: App, start_worker: Start, ledger: Path, pool: str
) -> None:
    start_worker(pool=pool, concurrency=1)
    job_id, error = terminated(worker_app, "t.async_stoppable", ledger, 30)
    assert error["type"] == "Terminated"
    assert lines(ledger, job_id) == ["start", "finally"]
    assert worker_app.send_task("t.async_add", (2, 3)).get(timeout=10) == 5


def test_a_job_in_one_long_c_call_is_stopped_only_when_the_call_returns_and_says_so(
    worker_app: App, start_worker: Start, ledger: Path
) -> None:
    start_worker(pool="thread", concurrency=1)
    job_id, error = terminated(worker_app, "t.in_c", ledger, 2.0)
    assert ran_for(worker_app, job_id) >= 1.9  # the sleep could not be cut short
    assert error["interrupted"] is True
    assert "landed only" in error["message"]
    assert "call into C code" in error["message"]
    assert lines(ledger, job_id) == ["start"]  # stopped as the call returned


def test_a_task_that_catches_terminated_runs_on_and_its_record_says_so(
    worker_app: App, start_worker: Start, ledger: Path
) -> None:
    start_worker(pool="thread", concurrency=1)
    job_id, error = terminated(worker_app, "t.swallow", ledger, 1.5)
    assert (error["type"], error["interrupted"]) == ("Terminated", False)
    assert "the task caught Terminated and ran on" in error["message"]
    assert "it was not stopped" in error["message"]
    assert lines(ledger, job_id) == ["start", "caught-Terminated", "end"]  # raised once


def test_time_limits_are_raised_in_a_thread_pool_job(worker_app: App, start_worker: Start) -> None:
    start_worker(pool="thread", concurrency=3)
    python = worker_app.send_task("t.soft_uncaught", (20,))
    in_c = worker_app.send_task("t.soft_late", (1.5,))
    caught = worker_app.send_task("t.hard_caught", (1.0,))
    jobs = [python, in_c, caught]
    wait_until(lambda: all(j.state.finished for j in jobs), 10, "all three to end")
    assert ran_for(worker_app, python.id) < 5  # stopped, not run for 20 s
    error = error_of(worker_app, python.id)
    assert (error["type"], error["limit"], error["interrupted"]) == (
        "SoftTimeLimitExceeded",
        "soft",
        True,
    )
    assert error["message"].startswith("the soft time limit of 0.3s fired")
    late = error_of(worker_app, in_c.id)
    assert (late["type"], late["limit"]) == ("SoftTimeLimitExceeded", "soft")
    assert "landed only" in late["message"]
    assert caught.state is State.FAILURE  # past its hard limit, whatever it returned
    unheeded = error_of(worker_app, caught.id)
    assert (unheeded["type"], unheeded["limit"], unheeded["interrupted"]) == (
        "TimeLimitExceeded",
        "hard",
        False,
    )
    assert "the task caught TimeLimitExceeded and ran on" in unheeded["message"]


def test_an_exception_raised_into_a_run_never_outlives_it() -> None:
    """Terminate and a hard limit race the end of many short runs (as ``execute`` runs
    them); whatever they raised must land inside the run or be dropped, never in the code
    the thread runs next."""
    leaked = 0
    for i in range(400):
        run = ThreadRun(None, 0.0005 * (i % 3) + 0.0001)
        racer = threading.Timer(0.0003 * (i % 7), run.terminate)
        racer.start()  # may come before the run opens: then it raises nothing
        try:
            with run:
                deadline = time.monotonic() + 0.0003 * (i % 5)
                while time.monotonic() < deadline:
                    pass
        except TaskControl:
            run.close()
        try:
            racer.join()
            deadline = time.monotonic() + 0.002  # the thread's next job
            while time.monotonic() < deadline:
                pass
        except TaskControl:
            leaked += 1
    assert leaked == 0


def terminate_as_the_run_closes() -> None:
    """Run an empty run in this thread; an interrupter holding the run's lock raises
    while this thread waits for that lock to close the run."""
    run = ThreadRun(None, None)
    holding, closing = threading.Event(), threading.Event()

    def interrupter() -> None:
        with run._lock:  # ThreadRun.interrupt holds it while it raises
            holding.set()
            closing.wait(5)
            time.sleep(0.05)  # the run's thread is now blocked on the lock, in C
            assert run._interrupt_locked(Terminated, "a terminate as the run closes")

    with run:
        other = threading.Thread(target=interrupter)
        other.start()
        holding.wait(5)
        closing.set()
    other.join()


def test_an_exception_raised_as_the_run_closes_is_dropped() -> None:
    """The window the lock leaves. The exception must be dropped as the run closes, not
    land in whatever the thread runs next."""
    terminate_as_the_run_closes()
    deadline = time.monotonic() + 0.05  # the thread's next job: nothing may land here
    while time.monotonic() < deadline:
        pass


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["thread", "solo"])
def test_cli_worker_stops_a_revoked_job_in_its_thread(
    shared_url: str,
    conveyor_proc: Callable[..., subprocess.Popen[bytes]],
    ledger: Path,
    pool: str,
) -> None:
    producer = App("producer", backend=shared_url)
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-P", pool, "-c", "1",
        env={"CONVEYOR_BACKEND": shared_url},
    )  # fmt: skip
    long = producer.send_task("t.stoppable", (str(ledger), 30))
    took = revoke_and_time(producer, long.id, ledger, within=10)
    assert long.state is State.REVOKED
    error = error_of(producer, long.id)
    assert (error["type"], error["interrupted"]) == ("Terminated", True)
    assert lines(ledger, long.id) == ["start", "finally"]
    assert producer.send_task("t.add", (2, 2)).get(timeout=20) == 4
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    print(f"{pool}: revoke() to REVOKED {took * 1000:.0f} ms")
