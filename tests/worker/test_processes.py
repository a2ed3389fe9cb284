"""Real worker subprocesses, real signals: nothing is lost, revokes hold, shutdown is clean.

Each test starts ``python -m conveyor worker`` in its own session (so the whole process
group, children included, can be signalled) on every backend several processes can
share (a SQLite file, Redis), with the test app's short timers (2 s leases). Executions are counted from a ledger file the tasks append to.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import psutil
import pytest

from conveyor import App, State
from conveyor.records import JobRecord
from conveyor.task import Signature
from conveyor.worker.pools import zygote
from conveyor.worker.pools.shared import TABLE_BYTES, encode

from .conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow
START_METHODS = ["fork", "forkserver", "spawn"]


def ledger_job(ledger: Path, seconds: float) -> Signature:
    return Signature("t.ledger", (str(ledger), seconds))


def registered(app: App, proc: subprocess.Popen[bytes]) -> bool:
    return any(w.pid == proc.pid for w in app.backend.workers())


def states(jobs: list[object], app: App) -> Counter[State]:
    found = app.backend.get_many([j.id for j in jobs])  # type: ignore[attr-defined]
    return Counter(r.state for r in found.values())


def starts(ledger: Path) -> Counter[str]:
    return Counter(line[1] for line in ledger_lines(ledger) if line[0] == "start")


def ends(ledger: Path) -> Counter[str]:
    return Counter(line[1] for line in ledger_lines(ledger) if line[0] == "end")


@pytest.mark.parametrize("start_method", START_METHODS)
def test_sigkill_of_worker_and_children_loses_nothing(
    producer: App,
    spawn_worker: Callable[..., subprocess.Popen[bytes]],
    ledger: Path,
    start_method: str,
) -> None:
    jobs = producer.enqueue_many([ledger_job(ledger, 0.3) for _ in range(16)])
    victim = spawn_worker("-c", "2", "--start-method", start_method)
    wait_until(
        lambda: len(ends(ledger)) >= 4 and len(starts(ledger)) - len(ends(ledger)) >= 1,
        30,
        "jobs in flight",
    )
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    # Running at the kill = holding a lease: started, not yet acknowledged. That includes a
    # job whose task had returned but whose ack had not landed (at-least-once).
    records = producer.backend.get_many([j.id for j in jobs]).values()
    running_at_kill = {r.id for r in records if r.state is State.STARTED}
    assert running_at_kill, "the kill should land while jobs run"
    survivor = spawn_worker("-c", "2", "--start-method", start_method)
    wait_until(lambda: states(jobs, producer)[State.SUCCESS] == len(jobs), 60, "every job SUCCESS")
    counts = starts(ledger)
    assert set(counts) == {j.id for j in jobs}
    duplicated = {job_id for job_id, n in counts.items() if n > 1}
    assert duplicated <= running_at_kill  # only jobs running at the kill ran again
    assert all(ends(ledger)[j.id] >= 1 for j in jobs)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(20) == 0


@pytest.mark.parametrize("start_method", START_METHODS)
def test_terminate_kills_the_child_and_the_pool_goes_on(
    producer: App,
    spawn_worker: Callable[..., subprocess.Popen[bytes]],
    ledger: Path,
    start_method: str,
) -> None:
    worker = spawn_worker("-c", "1", "--start-method", start_method)
    long = producer.enqueue_many([ledger_job(ledger, 30)])[0]
    wait_until(lambda: starts(ledger)[long.id], 30, "the long job to start")
    long.revoke(terminate=True)
    wait_until(lambda: long.state is State.REVOKED, 10, "the running job to be stopped")
    assert ends(ledger)[long.id] == 0
    error = long.error
    assert error is not None
    assert error["type"] == "Terminated"
    added = producer.send_task("t.add", (2, 2))
    with evidence(worker, producer, [long.id, added.id]):
        assert added.get(timeout=20) == 4  # a fresh child serves on
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_a_hard_limit_kill_is_logged_with_the_task_name(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The child is killed before it sends the job's record (it sends records with the
    first outcome): the worker's log line still names the task."""
    worker = spawn_worker("-c", "1")
    job = producer.send_task("t.hard")
    wait_until(lambda: job.state is State.FAILURE, 20, "the hard time limit to fail the job")
    line = f"FAILURE t.hard {job.id}: TimeLimitExceeded".encode()
    wait_until(lambda: line in _log(worker), 10, "the outcome's log line")
    assert f"FAILURE ? {job.id}".encode() not in _log(worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_retries_that_run_out_name_max_retries_and_the_last_error(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    worker = spawn_worker("-c", "1")
    job = producer.send_task("t.retry_in_except")
    wait_until(lambda: job.state is State.FAILURE, 20, "the retries to run out")
    record = job.record()  # the producer does not know the task: its default max_retries
    error = record.error
    assert error is not None
    assert record.attempt == record.max_retries + 1
    assert error["type"] == "ConnectionError"
    said = f"max_retries ({record.max_retries}) exceeded; last error: ConnectionError: device did not answer"
    assert error["message"] == said
    assert 'raise ConnectionError("device did not answer")' in error["traceback"]
    wait_until(lambda: said.encode() in _log(worker), 10, "the worker's log line")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_a_retried_job_leaves_the_workers_slots_once_it_succeeds(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The registry's slots (``WorkerInfo.running``, the dashboard's Workers page) list
    what the worker holds: a job that retried, then succeeded, leaves them with the next
    heartbeats, not minutes later."""
    worker = spawn_worker("-c", "2")
    wait_until(lambda: registered(producer, worker), 20, "the worker to register")
    for _ in range(3):
        job_id = producer.send_task("t.flaky", (2,)).id  # fails once, retries, succeeds
        wait_until(partial(left_slots, producer, worker, job_id), 20, "a heartbeat without it")


def left_slots(app: App, worker: subprocess.Popen[bytes], job_id: str) -> bool:
    """``job_id`` succeeded on its second attempt, and a heartbeat of ``worker`` written
    since no longer lists it."""
    record = app.backend.get(job_id)
    if record.state is not State.SUCCESS or record.finished_at is None:
        return False
    assert record.attempt == 2
    me = next(w for w in app.backend.workers() if w.pid == worker.pid)
    return me.last_seen > record.finished_at and job_id not in me.running


def _tree(pid: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(the worker's direct children, their children)."""
    direct = psutil.Process(pid).children()
    return direct, [grandchild for child in direct for grandchild in child.children()]


@pytest.mark.skipif(not zygote.available(), reason="the fork start method is Linux-only")
def test_by_default_children_are_forked_by_one_zygote_not_a_fork_server(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    worker = spawn_worker("-c", "2")
    assert producer.send_task("t.add", (1, 2)).get(timeout=30) == 3
    wait_until(lambda: len(_tree(worker.pid)[1]) == 2, 10, "two children under the zygote")
    direct, children = _tree(worker.pid)
    assert len(direct) == 1  # the zygote; no fork server, no resource tracker
    # Forks titled for ps (proctitle.py), not fresh interpreters (python -c ...).
    titles = [" ".join(c.cmdline()).strip() for c in [*direct, *children]]
    assert titles[0].startswith("conveyor worker ["), titles
    assert titles[0].endswith("] zygote"), titles
    assert sorted(t.rsplit("] ", 1)[1] for t in titles[1:]) == ["child 1", "child 2"], titles
    # What every child's first connection needs is loaded once, in the zygote, so the
    # children share it instead of each loading its own copy (0.4 MiB and more a child).
    assert any("unicodedata" in m.path for m in direct[0].memory_maps())
    banner = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert "process x 2, fork (" in banner  # not "forkserver"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert not any(p.is_running() for p in [*direct, *children])


@pytest.mark.skipif(not zygote.available(), reason="the fork start method is Linux-only")
def test_a_killed_zygote_takes_its_children_and_the_pool_goes_on_from_a_fork_server(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    worker = spawn_worker("-c", "2")
    long = producer.enqueue_many([ledger_job(ledger, 30)])[0]
    wait_until(lambda: starts(ledger)[long.id], 30, "the long job to start")
    (zygote_process,), _ = _tree(worker.pid)
    zygote_process.kill()  # its children die with it (PR_SET_PDEATHSIG): the job was running
    wait_until(lambda: starts(ledger)[long.id] == 2, 30, "the job to run again")
    assert producer.send_task("t.add", (2, 2)).get(timeout=30) == 4  # the other new child
    log = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert "fork server from now on" in log
    assert worker.poll() is None
    long.revoke(terminate=True)
    wait_until(lambda: long.state is State.REVOKED, 20, "the second run to be stopped")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_a_zygote_that_does_not_answer_is_killed_and_the_pool_goes_on_from_a_fork_server(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The worker waited for ever for a frozen zygote to report a dead child's exit, or to
    fork its replacement (a worker restarted under up once never reached its first
    heartbeat). Now it waits ANSWER_TIMEOUT (10 s), kills the zygote and goes on."""
    worker = spawn_worker("-c", "1")
    assert producer.send_task("t.add", (1, 2)).get(timeout=30) == 3
    (zygote_process,), (child,) = _tree(worker.pid)
    zygote_process.suspend()  # SIGSTOP: alive, answers nothing
    child.kill()  # its replacement must come from the zygote
    assert producer.send_task("t.add", (2, 2)).get(timeout=40) == 4
    log = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert "did not report a child's exit in 10s: killed; children start from a fork server" in log
    # Said once: the replacement's spawn, which finds the zygote gone, does not say it again.
    told = [line for line in log.splitlines() if " ERROR " in line and "zygote" in line]
    assert len(told) == 1, log
    assert not zygote_process.is_running() or zygote_process.status() == psutil.STATUS_ZOMBIE
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_terminate_of_a_prefetched_job_skips_it_and_the_child_goes_on(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    """A child claims a batch (--prefetch 2 with one child: 3 at a time). A job revoked
    with terminate while it waits in that batch never starts; the next one still runs,
    and is the one killed when it is terminated in turn (the parent knows which job of
    the batch is running even after one was skipped)."""
    first, skipped, last = producer.enqueue_many(
        [ledger_job(ledger, 1.5), ledger_job(ledger, 0), ledger_job(ledger, 30)]
    )
    worker = spawn_worker("-c", "1", "--prefetch", "2")
    wait_until(lambda: starts(ledger)[first.id], 30, "the first job to start")
    assert producer.backend.get(skipped.id).state is State.STARTED  # claimed with the first
    skipped.revoke(terminate=True)
    wait_until(lambda: skipped.state is State.REVOKED, 10, "the prefetched job to be revoked")
    error = skipped.error
    assert error is not None
    assert "before it started" in error["message"]
    wait_until(lambda: starts(ledger)[last.id], 10, "the last job to start")
    assert first.state is State.SUCCESS
    last.revoke(terminate=True)
    wait_until(lambda: last.state is State.REVOKED, 10, "the running job to be stopped")
    assert ends(ledger)[last.id] == 0
    assert starts(ledger)[skipped.id] == 0  # never ran
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_revoke_of_a_running_job_survives_its_worker_dying(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    first = spawn_worker("-c", "1")
    job = producer.enqueue_many([ledger_job(ledger, 30)])[0]
    wait_until(lambda: starts(ledger)[job.id], 30, "the job to start")
    job.revoke()  # no terminate: the flag is stored with the job, not in the worker
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = spawn_worker("-c", "1")
    wait_until(lambda: job.state is State.REVOKED, 20, "the revoked job to end REVOKED")
    assert starts(ledger)[job.id] == 1  # never run again
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0


@pytest.mark.parametrize("start_method", START_METHODS)
def test_sigterm_lets_running_jobs_finish_and_releases_the_rest(
    producer: App,
    spawn_worker: Callable[..., subprocess.Popen[bytes]],
    ledger: Path,
    start_method: str,
) -> None:
    jobs = producer.enqueue_many([ledger_job(ledger, 1.0) for _ in range(8)])
    worker = spawn_worker("-c", "2", "--prefetch", "2", "--start-method", start_method)
    wait_until(lambda: len(starts(ledger)) == 2, 30, "two jobs running")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    finished = producer.backend.get_many([j.id for j in jobs])
    done = [r for r in finished.values() if r.state is State.SUCCESS]
    waiting = [r for r in finished.values() if r.state is State.PENDING]
    assert {r.id for r in done} == set(starts(ledger))  # what started, finished
    assert len(done) + len(waiting) == len(jobs)
    assert all(r.attempt == 0 and r.worker is None for r in waiting)  # released, not left leased
    assert not registered(producer, worker)  # it left the registry


def assert_interrupted_once(record: JobRecord) -> None:
    """A running job its worker stopped at shutdown: back in its queue, its attempt kept."""
    assert (record.state, record.attempt, record.worker) == (State.PENDING, 1, None)
    (attempt,) = record.attempts
    assert attempt["state"] == "PENDING"
    assert attempt["attempt"] == 1
    assert attempt["error"] == {
        "type": "Interrupted",
        "message": "the worker shut down; the job went back to its queue",
    }
    assert attempt["worker"]
    assert attempt["finished_at"] > attempt["started_at"]


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_a_job_still_running_at_the_shutdown_timeout_goes_back_to_its_queue(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path, pool: str
) -> None:
    """Its records may not have reached the worker (a child sends them with the job's
    outcome): the worker still waits no longer than the timeout for it."""
    worker = spawn_worker("-P", pool, "-c", "1", "--shutdown-timeout", "1")
    job = producer.enqueue_many([ledger_job(ledger, 30)])[0]
    wait_until(lambda: starts(ledger)[job.id], 30, "the job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert job.state is State.PENDING  # released at once, not left to its lease
    assert not ends(ledger)
    assert_interrupted_once(job.record())


def test_second_signal_returns_running_jobs_to_the_queue_at_once(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    jobs = producer.enqueue_many([ledger_job(ledger, 30) for _ in range(2)])
    worker = spawn_worker("-c", "2")
    wait_until(lambda: len(starts(ledger)) == 2, 30, "two jobs running")
    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: b"draining" in _log(worker), 10, "the worker to start draining")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0  # well before the 30 s jobs end: it did not wait for them
    records = producer.backend.get_many([j.id for j in jobs]).values()
    assert [r.state for r in records] == [State.PENDING, State.PENDING]  # no lease expiry needed
    assert not ends(ledger)
    for record in records:
        assert_interrupted_once(record)


def test_a_task_that_kills_its_process_fails_after_bounded_deliveries(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    worker = spawn_worker("-c", "1")
    poison = producer.send_task("t.suicide")
    healthy = producer.send_task("t.add", (1, 1))
    wait_until(lambda: poison.state is State.FAILURE, 30, "the poison job to fail")
    record = poison.record()
    assert record.error is not None
    assert record.error["type"] == "WorkerLost"
    assert record.lost_leases == producer.conf.max_lost_leases
    assert healthy.get(timeout=20) == 2
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    # The child died in its job's first line, before its records could reach the worker:
    # the worker accounted for it from the shared lease table, not by waiting for the lease.
    log = _log(worker)
    assert log.count(b"died with exit code 13 while running the job (os._exit in the task, or "
                     b"code it called); ") == record.lost_leases  # fmt: skip
    assert b"of dead workers" not in log
    # One death per delivery, each counted once: the last one ended the job, so it is its
    # FAILURE, not also a LOST.
    lost = record.lost_leases - 1
    assert f"worker stopped: SUCCESS 1, FAILURE 1, LOST {lost}".encode() in log


def test_a_task_that_calls_sys_exit_fails_with_its_code_and_its_child_survives(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """``sys.exit(3)`` in a task body is that task's failure, like any exception: the
    record names the code and says to raise instead; the child runs the next job (before,
    SystemExit ended the child: the job was counted as a lost worker three times and
    failed "WorkerLost", and the log said it was returned to its queue)."""
    worker = spawn_worker("-c", "1", "--prefetch", "0")
    before = producer.send_task("t.pid")
    assert isinstance(before.get(timeout=20), int)
    job = producer.send_task("t.exit", (3,))
    wait_until(lambda: job.state.finished, 20, "the exiting job to end")
    after = producer.send_task("t.pid")
    assert after.get(timeout=20) == before.result  # the same child: it did not exit
    record = job.record()
    assert record.state is State.FAILURE
    assert (record.attempt, record.lost_leases) == (1, 0)
    assert record.error is not None
    assert record.error["type"] == "SystemExit"
    assert record.error["code"] == 3
    assert record.error["message"] == "the task called sys.exit(3)"
    assert "a task should raise, not exit" in record.error["hint"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    log = _log(worker)
    assert f"FAILURE t.exit {job.id}: SystemExit: the task called sys.exit(3)".encode() in log
    assert b"died with exit code" not in log


def test_a_child_killed_by_a_signal_is_recorded_with_its_signal(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The record says what the worker saw (before: "stopped renewing its lease (killed,
    or its machine lost)", then "check ... out of memory, segfault, SIGKILL")."""
    worker = spawn_worker("-c", "1", "--prefetch", "0", app="tests.apps.steady:app")
    job = producer.send_task("t.kill_self", (int(signal.SIGKILL),))
    wait_until(lambda: job.state is State.FAILURE, 30, "the job to fail")
    record = job.record()
    seen = (
        r"worker child \d+ was killed by SIGKILL while running the job \(the kernel's "
        r"out-of-memory killer, or a kill from outside\)"
    )
    assert record.error is not None
    assert re.search(f"The last time: {seen}$", record.error["message"])
    for attempt in record.attempts[:-1]:
        assert attempt["error"]["type"] == "WorkerLost"
        assert re.fullmatch(f"{seen}; it went back to its queue", attempt["error"]["message"])
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    log = _log(worker).decode()
    assert re.search(
        f"job {job.id}: {seen}; returned to its queue \\(lost delivery 1 of at most 3\\)", log
    )
    assert re.search(f"job {job.id}: {seen}; the job ended FAILURE", log)
    assert f"FAILURE t.kill_self {job.id}: WorkerLost:" in log


def test_a_child_that_dies_blames_only_the_job_it_was_running(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """A backlog of [exits, innocent, raises, innocent] x 25: each exiting job kills its
    child three times and fails as a lost worker; the jobs claimed in the same batch
    never take a lost delivery. Those not begun are released uncounted; those that
    finished but whose outcome died with the child run again, uncounted too (before, some
    of them took a lost attempt reading "killed, or its machine lost", and three such
    deaths would fail an innocent job as poison)."""
    jobs = producer.enqueue_many(
        [
            sig
            for n in range(25)
            for sig in (
                Signature("t.suicide"),
                Signature("t.add", (n, 1)),
                Signature("t.fail", ("custom",)),
                Signature("t.add", (n, 2)),
            )
        ]
    )
    worker = spawn_worker("-c", "2", app="tests.apps.steady:app")
    wait_until(lambda: all(j.state.finished for j in jobs), 90, "every job to end")
    records = producer.backend.get_many([j.id for j in jobs])
    exits, innocent, raises = jobs[0::4], jobs[1::4] + jobs[3::4], jobs[2::4]
    for job in exits:
        record = records[job.id]
        assert record.state is State.FAILURE
        assert record.error is not None
        assert record.error["type"] == "WorkerLost"
        assert record.lost_leases == producer.conf.max_lost_leases
        assert "The last time: worker child " in record.error["message"]
        assert "died with exit code 13 while running the job" in record.error["message"]
        lost = [a["error"] for a in record.attempts if a["state"] == "PENDING"]
        assert len(lost) == producer.conf.max_lost_leases - 1
        for error in lost:
            assert error["type"] == "WorkerLost", record.attempts
            assert re.fullmatch(
                r"worker child \d+ died with exit code 13 while running the job \(os._exit in "
                r"the task, or code it called\); it went back to its queue",
                error["message"],
            )
    for job in innocent + raises:
        record = records[job.id]
        assert record.state is (State.SUCCESS if job in innocent else State.FAILURE)
        assert record.lost_leases == 0, record.attempts
        types = {(a.get("error") or {}).get("type") for a in record.attempts}
        assert "LeaseExpired" not in types, record.attempts
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    log = _log(worker).decode()
    assert "of dead workers" not in log
    for job in exits:
        assert f"FAILURE t.suicide {job.id}: WorkerLost" in log


def test_a_batch_too_big_for_the_lease_table_is_announced_first_and_settled_alike(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """80 jobs with 200-character ids (the longest an id may be), claimed at once, do not
    fit the child's lease table: their records go to the worker before the first runs.
    That first one kills its child each time: the worker itself (no lease expiring)
    counts it lost and releases the 79 others, or counts them lost too when they ran
    before it and their outcomes were not stored yet (at least once: they run again)."""
    ids = [f"{n:03d}".ljust(200, "x") for n in range(80)]
    assert len(encode((0, [(job_id, "0123456789abcdef") for job_id in ids]))) > TABLE_BYTES
    poison = Signature("t.suicide").set(job_id=ids[0], priority=9)  # first in every batch
    adds = [Signature("t.add", (n, n)).set(job_id=job_id) for n, job_id in enumerate(ids[1:])]
    jobs = producer.enqueue_many([poison, *adds])
    worker = spawn_worker("-c", "1", "--prefetch", "79")
    wait_until(lambda: jobs[0].state is State.FAILURE, 30, "the poison job to fail")
    wait_until(lambda: all(j.state is State.SUCCESS for j in jobs[1:]), 30, "the others to run")
    assert jobs[0].record().lost_leases == producer.conf.max_lost_leases
    assert [j.result for j in jobs[1:]] == [2 * n for n in range(79)]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert b"of dead workers" not in _log(worker)


@pytest.mark.skipif(sys.platform == "win32", reason="libc's sleep through ctypes")
def test_a_task_holding_the_gil_past_its_lease_keeps_it(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The child cannot send its records while the task holds the GIL: the worker renews
    the lease from the table the child wrote before it ran the job."""
    worker = spawn_worker("-c", "1")
    job = producer.send_task("t.hold_gil", (5,))  # 2.5 leases of the test app's 2 s
    assert job.get(timeout=30) == "held"
    record = job.record()
    assert (record.attempt, record.lost_leases) == (1, 0)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert b"lease lost" not in _log(worker)


@pytest.mark.skipif(sys.platform == "win32", reason="libc's sleep through ctypes")
def test_terminate_of_a_job_holding_the_gil_kills_it_and_runs_its_link_error(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    """Its child can neither answer the terminate nor send the job's record: the worker
    kills it after the grace period, names the job from the lease table, and fetches the
    record for the job's errback."""
    worker = spawn_worker("-c", "1")
    errback = Signature("t.errback", (str(ledger),))
    job = Signature("t.hold_gil", (60,), app=producer).apply_async(link_error=errback)
    wait_until(lambda: job.state is State.STARTED, 20, "the job to start")
    job.revoke(terminate=True)
    wait_until(lambda: job.state is State.REVOKED, 20, "the job to be killed")
    wait_until(lambda: ledger_lines(ledger), 20, "the errback to run")
    assert [line[:2] for line in ledger_lines(ledger)] == [["errback", job.id]]
    assert producer.send_task("t.add", (2, 2)).get(timeout=20) == 4  # a fresh child serves on
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def _log(proc: subprocess.Popen[bytes]) -> bytes:
    path: Path = proc.log_path  # type: ignore[attr-defined]
    return path.read_bytes()


@contextlib.contextmanager
def evidence(proc: subprocess.Popen[bytes], app: App, job_ids: list[str]) -> Iterator[None]:
    """On a failure inside, print what a flake needs explained (pytest shows it): each
    job's record (state, worker, lease, attempts) and the worker's log."""
    try:
        yield
    except BaseException:
        now = app.backend.now()
        for job_id, r in app.backend.get_many(job_ids).items():
            lease = None if r.lease_until is None else round(r.lease_until - now, 3)
            print(f"job {job_id} {r.task}: {r.state.value} worker={r.worker} "
                  f"token={r.lease_token} lease_left={lease}s attempt={r.attempt} "
                  f"lost_leases={r.lost_leases} attempts={r.attempts}")  # fmt: skip
        print(f"--- worker log (pid {proc.pid}, children {_children(proc)}) ---")
        print(_log(proc).decode(errors="replace"))
        raise


def _children(proc: subprocess.Popen[bytes]) -> list[int]:
    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    return []


def test_two_workers_on_the_same_queues_run_every_job_exactly_once(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    # 20 ms each: longer than a process worker's children take to start, so both share.
    jobs = producer.enqueue_many([ledger_job(ledger, 0.02) for _ in range(300)])
    workers = [spawn_worker("-c", "2", "--prefetch", "2"), spawn_worker("-c", "2", "-P", "thread")]
    wait_until(lambda: states(jobs, producer)[State.SUCCESS] == len(jobs), 60, "every job SUCCESS")
    counts = starts(ledger)
    assert set(counts) == {j.id for j in jobs}
    assert set(counts.values()) == {1}  # no job ran twice
    pids = Counter(line[2] for line in ledger_lines(ledger) if line[0] == "start")
    assert len(pids) >= 2  # both workers (and their children) took part
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0


def test_auto_prefetch_never_holds_a_short_job_behind_a_long_one_for_long(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    """Auto prefetch, a fresh worker: a long first job is claimed alone (nothing waits
    behind it); after short jobs have grown the child's batch, the jobs claimed with a long
    one go back to the queue within the give-back time, so a second worker runs them
    while the first is still busy."""
    first_long = producer.send_task("t.ledger", (str(ledger), 30))
    waiting = producer.send_task("t.ledger", (str(ledger), 0))
    first = spawn_worker("-c", "1")
    wait_until(lambda: starts(ledger)[first_long.id] == 1, 30, "the long job to start")
    second = spawn_worker("-c", "1")
    wait_until(lambda: waiting.state is State.SUCCESS, 20, "the second worker to run it")
    assert producer.backend.get(waiting.id).attempt == 1  # never claimed by the first
    first_long.revoke(terminate=True)
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    wait_until(lambda: first_long.state is State.REVOKED, 20, "the long job to stop")
    # Now the first worker's child is warm: short jobs grow its batch, then a long one.
    jobs = producer.enqueue_many(
        [ledger_job(ledger, 0) for _ in range(40)]
        + [ledger_job(ledger, 30)]
        + [ledger_job(ledger, 0) for _ in range(5)]
    )
    shorts, long, after = jobs[:40], jobs[40], jobs[41:]
    wait_until(lambda: starts(ledger)[long.id] == 1, 30, "the long job to start")
    wait_until(lambda: all(j.state is State.SUCCESS for j in shorts), 20, "the short jobs")
    third = spawn_worker("-c", "1")
    wait_until(lambda: all(j.state is State.SUCCESS for j in after), 20, "the third to run them")
    assert long.state is State.STARTED  # still running in the first worker
    assert all(starts(ledger)[j.id] == 1 for j in after)
    assert all(producer.backend.get(j.id).attempt == 1 for j in after)  # given back: uncounted
    for worker in (first, third):
        worker.send_signal(signal.SIGTERM)
    assert third.wait(20) == 0
    long.revoke(terminate=True)
    first.wait(30)


def test_jobs_claimed_with_a_long_one_are_given_back_for_another_worker(
    producer: App, spawn_worker: Callable[..., subprocess.Popen[bytes]], ledger: Path
) -> None:
    """A child claims a batch (``--prefetch 2``: three at once): the first runs for 30 s,
    and the two claimed with it go back to the queue within a second (not counted as an
    attempt), so a second worker runs them while the first is still busy; the first
    never runs them."""
    long, *short = producer.enqueue_many(
        [ledger_job(ledger, 30), ledger_job(ledger, 0), ledger_job(ledger, 0)]
    )
    first = spawn_worker("-c", "1", "--prefetch", "2")
    wait_until(lambda: starts(ledger)[long.id] == 1, 30, "the long job to start")
    wait_until(
        lambda: all(producer.backend.get(j.id).state is State.PENDING for j in short),
        10,
        "its batch-mates to be given back",
    )
    second = spawn_worker("-c", "1")
    wait_until(lambda: all(j.state is State.SUCCESS for j in short), 20, "the second to run them")
    assert long.state is State.STARTED  # still running in the first worker
    ran_by = {line[1]: line[2] for line in ledger_lines(ledger) if line[0] == "start"}
    assert ran_by[short[0].id] != ran_by[long.id]
    assert all(producer.backend.get(j.id).attempt == 1 for j in short)
    assert all(starts(ledger)[j.id] == 1 for j in short)
    for worker in (first, second):
        worker.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    long.revoke(terminate=True)
    first.wait(30)
