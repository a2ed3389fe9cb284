"""Fault injection: what happens to jobs when parts fail in the ways production sees.

Real worker subprocesses on every backend several processes share, real signals, and a
ledger written by the tasks outside the system under test.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.errors import BackendError
from conveyor.testing.ledger import LEDGER_TASK, Fault, Ledger, check
from conveyor.worker import Worker
from conveyor.worker.testhooks import HOLD_ACK

from ..apps.basic import app as worker_side
from ..contract.helpers import write_raw_payload
from ..worker.conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow
Spawn = Callable[..., subprocess.Popen[bytes]]
#: The lease the workers run with (the test app's: 2 s), not the producer's default.
WORKER_LEASE = worker_side.conf.lease_seconds


@pytest.fixture
def producer(shared_url: str) -> App:
    return App("producer", backend=shared_url)


@pytest.fixture
def spawn(shared_url: str, conveyor_proc: Spawn) -> Spawn:
    names = iter(range(100))

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        name = f"w{next(names)}"
        return conveyor_proc(
            "-A",
            "tests.apps.basic:app",
            "worker",
            "-n",
            name,
            *args,
            env={"CONVEYOR_BACKEND": shared_url, **(env or {})},
        )

    return start


def worker_id(app: App, name: str) -> str:
    return str(
        wait_until(
            lambda: next((w.id for w in app.backend.workers() if w.name == name), None), 20, name
        )
    )


def seen_at(app: App, name: str) -> float:
    return next(w.last_seen for w in app.backend.workers() if w.name == name)


def freeze_between_writes(app: App, proc: subprocess.Popen[bytes]) -> None:
    """SIGSTOP ``proc``'s process group at a moment none of it holds SQLite's write lock.
    A process frozen inside a write transaction holds the file's lock, so no other
    worker can write until it runs again: inherent to SQLite, named in docs/faults.md,
    and not what these tests are about. Redis and PostgreSQL: frozen at once."""
    url = str(app.conf.backend_url)
    for _ in range(50):
        os.killpg(proc.pid, signal.SIGSTOP)
        if not url.startswith("sqlite"):
            return
        probe = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0.2)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:  # locked: let it finish that transaction
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        finally:
            probe.close()
    raise AssertionError("the worker held SQLite's write lock at every try")


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_stalled_worker_past_its_lease_cannot_overwrite_the_new_delivery(
    producer: App, spawn: Spawn, tmp_path: Path, pool: str
) -> None:
    ledger = tmp_path / "ledger.txt"
    stalled = spawn("-P", pool, "-c", "1")
    job = producer.send_task("t.ledger", (str(ledger), 1.5))
    wait_until(lambda: ledger_lines(ledger), 20, "the job to start")
    freeze_between_writes(producer, stalled)  # frozen: no heartbeats, its lease runs out
    fresh = spawn("-P", pool, "-c", "1")
    fresh_id = worker_id(producer, "w1")
    wait_until(lambda: job.state is State.SUCCESS, 30, "the second delivery to finish")
    assert job.record().worker == fresh_id
    os.killpg(stalled.pid, signal.SIGCONT)  # it wakes, finishes its copy, and tries to ack
    # The refusal of that ack itself, not the heartbeat's "lease lost" warning, which can
    # come first: only after the refusal are the record's checks about the late ack.
    refused = f"job {job.id}: lease lost before its outcome was stored"
    log = Path(stalled.log_path)  # type: ignore[attr-defined]
    wait_until(lambda: refused in log.read_text(), 20, "the late ack to be refused")
    assert [line[0] for line in ledger_lines(ledger)] == ["start", "start", "end", "end"]
    record = job.record()
    assert (record.state, record.worker) == (State.SUCCESS, fresh_id)  # not overwritten
    assert [a["state"] for a in record.attempts] == [
        "PENDING",
        "SUCCESS",
    ]  # lease expired, then done once
    for proc in (stalled, fresh):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.timeout(120)
def test_a_job_running_many_times_its_lease_is_never_delivered_twice(
    producer: App, spawn: Spawn, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    workers = [spawn("-P", "thread", "-c", "1"), spawn("-P", "thread", "-c", "1")]
    job = producer.send_task("t.ledger", (str(ledger), 10 * WORKER_LEASE))  # app lease: 2 s
    wait_until(lambda: job.state is State.SUCCESS, 60, "the long job to finish")
    logs = "\n".join(Path(p.log_path).read_text() for p in workers)  # type: ignore[attr-defined]
    assert [line[0] for line in ledger_lines(ledger)] == ["start", "end"], logs  # renewed
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_workers_stalled_together_past_the_lease_do_not_run_a_job_twice(
    producer: App, spawn: Spawn, tmp_path: Path, pool: str
) -> None:
    """A machine paused (or starved of CPU) stalls every worker on it at once; when it
    runs again, the holder's lease has run out though it was never dead. The rescuer is
    resumed first, so without a guard its rescue comes before the holder's heartbeat."""
    ledger = tmp_path / "ledger.txt"
    holder = spawn("-P", pool, "-c", "1")
    job = producer.send_task("t.ledger", (str(ledger), 3 * WORKER_LEASE))
    wait_until(lambda: ledger_lines(ledger), 20, "the job to start")
    rescuer = spawn("-P", pool, "-c", "1")
    worker_id(producer, "w1")
    first = seen_at(producer, "w1")
    wait_until(lambda: seen_at(producer, "w1") > first, 20, "the rescuer's main loop to beat")
    freeze_between_writes(producer, holder)
    freeze_between_writes(producer, rescuer)
    time.sleep(WORKER_LEASE * 1.5)  # both frozen: the lease runs out
    os.killpg(rescuer.pid, signal.SIGCONT)
    os.killpg(holder.pid, signal.SIGCONT)
    wait_until(lambda: job.state is State.SUCCESS, 30, "the job to finish")
    logs = "\n".join(Path(p.log_path).read_text() for p in (holder, rescuer))  # type: ignore[attr-defined]
    assert [line[0] for line in ledger_lines(ledger)] == ["start", "end"], logs
    assert "stalled" in Path(rescuer.log_path).read_text()  # type: ignore[attr-defined]
    for proc in (holder, rescuer):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_a_crash_between_the_work_and_the_ack_reruns_it_and_records_one_result(
    producer: App, spawn: Spawn, tmp_path: Path, pool: str
) -> None:
    """SIGKILL after the job's body returned and before its outcome was stored: a test hook
    holds the ack (in a process-pool child's storer; in the worker's main loop for the
    thread pool) and says so with a file, and the whole worker dies in that window."""
    ledger = Ledger(tmp_path / "ledger.txt")
    holding = tmp_path / "holding-the-ack"
    doomed = spawn("-P", pool, "-c", "1", env={HOLD_ACK: str(holding)})
    job = producer.send_task(LEDGER_TASK, (str(ledger.path),))
    wait_until(holding.exists, 30, "the outcome to be held before its ack")
    [first] = ledger.executions()[job.id]
    assert first.ended is not None  # the body returned...
    assert job.state is State.STARTED  # ...and its outcome is not stored
    killed_at = time.time()
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    survivor = spawn("-P", pool, "-c", "1")  # rescues the job once its lease (2 s) expires
    assert job.get(timeout=30) == job.id
    runs = ledger.executions()[job.id]
    assert [(r.attempt, r.ended is not None) for r in runs] == [(1, True), (2, True)]
    assert runs[1].pid != first.pid  # at least once: the survivor ran it again
    record = job.record()
    assert [a["state"] for a in record.attempts] == [
        "PENDING",
        "SUCCESS",
    ]  # lease expired, then one result, written once
    killed = Fault(killed_at, "SIGKILL worker", frozenset([first.pid]))
    report = check(producer.backend, ledger, [job.id], faults=[killed])
    assert report.ok, report.render()
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(20) == 0


def test_a_delay_longer_than_the_lease_runs_once_at_its_time(
    producer: App, spawn: Spawn, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    workers = [spawn("-P", "thread"), spawn("-P", "thread")]
    job = producer.send_task("t.ledger", (str(ledger),), countdown=2 * WORKER_LEASE)
    record = wait_until(
        lambda: job.record() if job.state is State.SUCCESS else None, 30, "the delayed job"
    )
    assert record.started_at >= record.run_at  # not early
    assert [line[0] for line in ledger_lines(ledger)] == ["start", "end"]  # and once
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_hard_limit_stops_a_long_c_call_at_the_limit(worker_app: App) -> None:
    job = worker_app.send_task("t.pbkdf2", (200_000_000,))  # tens of seconds of C
    after = worker_app.send_task("t.add", (2, 2))
    Worker(worker_app, pool="process", concurrency=1, burst=True).run()
    record = job.record()
    assert record.error is not None
    assert (record.state, record.error["limit"]) == (State.FAILURE, "hard")
    assert (record.finished_at or 0) - (
        record.started_at or 0
    ) < 3.0  # killed at the limit, not at return
    assert after.get(timeout=1) == 4


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"v": 99, "args": [], "kwargs": {}}', "version 99"),
        (
            b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94.",
            "not valid JSON",
        ),  # a pickle
        (b'["not", "an", "envelope"]', "not a Conveyor envelope"),
    ],
)
def test_corrupt_wrong_schema_and_pickle_payloads_fail_with_the_reason(
    worker_app: App, raw: bytes, reason: str
) -> None:
    bad = worker_app.send_task("t.add", (1, 1))
    good = worker_app.send_task("t.add", (2, 2))
    write_raw_payload(worker_app.backend, bad.id, raw)
    Worker(worker_app, pool="thread", burst=True).run()
    error = bad.record().error
    assert error is not None
    assert error["type"] == "UndecodablePayload"
    assert reason in error["message"]
    assert good.get(timeout=1) == 4  # the worker kept going


@pytest.mark.parametrize(
    "dead_url", ["redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/x"]
)
def test_an_unreachable_backend_fails_delay_quickly_and_clearly(dead_url: str) -> None:
    app = App("x", backend=dead_url)
    started = time.monotonic()
    with pytest.raises(BackendError, match="unreachable"):
        app.send_task("t.add", (1, 1))
    assert time.monotonic() - started < 15  # bounded by connect timeouts, never hangs
