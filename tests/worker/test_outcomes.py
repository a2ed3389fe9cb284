"""What a worker records for each kind of task behaviour, in every pool and on every backend.

These run the worker in-process (burst mode: it drains the queues, then returns), so
they are fast and deterministic; tests/worker/test_processes.py covers real processes
and signals.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.control.jobs import retry_note
from conveyor.worker import Worker

from ..conftest import BACKENDS
from ..contract.helpers import write_raw_payload
from .conftest import ledger_lines, wait_until

# "process-spawn" is the process pool under spawn, the only start method on Windows.
POOLS = ["thread", "solo", "async", "process", "process-spawn"]
# memory:// lives in one process, so the process pool refuses it (see test_pools.py).
pytestmark = pytest.mark.parametrize(
    ("backend_kind", "pool"),
    [(b, p) for b in BACKENDS for p in POOLS if not (b == "memory" and p.startswith("process"))],
)


def drain(app: App, pool: str, **options: object) -> Worker:
    options.setdefault("concurrency", 2)
    if pool == "process-spawn":
        pool, options["start_method"] = "process", "spawn"
    worker = Worker(app, pool=pool, burst=True, **options)  # type: ignore[arg-type]
    assert worker.run() == 0
    return worker


def test_results_of_sync_and_async_tasks(worker_app: App, pool: str) -> None:
    jobs = [worker_app.send_task("t.add", (i, i)) for i in range(5)] + [
        worker_app.send_task("t.async_add", (2, 3))
    ]
    drain(worker_app, pool)
    assert [j.get(timeout=1) for j in jobs] == [0, 2, 4, 6, 8, 5]
    record = jobs[0].record()
    assert record.attempts[0]["state"] == "SUCCESS"
    assert record.worker is not None


def test_failure_records_the_error_with_traceback(worker_app: App, pool: str) -> None:
    job = worker_app.send_task("t.fail", ("boom",))
    drain(worker_app, pool)
    record = job.record()
    assert record.state is State.FAILURE
    assert record.error is not None
    assert (record.error["type"], record.error["message"]) == ("ValueError", "boom")
    assert "raise ValueError(message)" in record.error["traceback"]


def test_a_tasks_traceback_starts_at_the_users_code(worker_app: App, pool: str) -> None:
    """Conveyor's frames that called the task (before: execute, call_task, a pool's own)
    are cut; an error raised inside Conveyor keeps them (a result that is not JSON)."""
    failed = worker_app.send_task("t.fail", ("boom",))
    async_failed = worker_app.send_task("t.async_fail", ("boom",))
    inside = worker_app.send_task("t.bad_result")
    drain(worker_app, pool)
    for job in (failed, async_failed):
        error = job.record().error
        assert error is not None
        lines = error["traceback"].splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert lines[1].startswith(f'  File "{Path(__file__).parents[1] / "apps" / "basic.py"}"')
        assert "src/conveyor" not in error["traceback"], error["traceback"]
    error = inside.record().error
    assert error is not None
    assert error["type"] == "SerializationError"
    assert "conveyor/serialization.py" in error["traceback"]


def test_autoretry_with_backoff_records_each_attempt(worker_app: App, pool: str) -> None:
    ok, exhausted = worker_app.send_task("t.flaky", (3,)), worker_app.send_task("t.flaky", (9,))
    drain(worker_app, pool)
    record = ok.record()
    assert (record.state, record.result, record.attempt) == (State.SUCCESS, 3, 3)
    assert [a["state"] for a in record.attempts] == ["RETRY", "RETRY", "SUCCESS"]
    assert record.attempts[0]["error"] == {"type": "ConnectionError", "message": "attempt 1 failed"}
    gap = record.attempts[1]["started_at"] - record.attempts[0]["finished_at"]
    assert gap >= 0.025  # backoff base 0.05 with equal jitter: at least half of it
    failed = exhausted.record()
    assert (failed.state, failed.attempt) == (State.FAILURE, 3)
    assert failed.error is not None
    assert failed.error["retries_exhausted"] is True
    assert failed.error["type"] == "ConnectionError"
    assert failed.error["message"] == (
        "max_retries (2) exceeded; last error: ConnectionError: attempt 3 failed"
    )
    assert 'raise ConnectionError(f"attempt' in failed.error["traceback"]


def test_self_retry_uses_the_countdown_and_keeps_the_last_error(worker_app: App, pool: str) -> None:
    job = worker_app.send_task("t.retry_self")
    drain(worker_app, pool)
    record = job.record()
    assert (record.state, record.attempt) == (State.FAILURE, 2)
    assert record.error is not None
    assert (record.error["type"], record.error["message"]) == (
        "RuntimeError",
        "max_retries (1) exceeded; last error: RuntimeError: try 2",
    )


def test_retries_run_out_naming_the_error_being_handled(worker_app: App, pool: str) -> None:
    in_except, bare = (
        worker_app.send_task("t.retry_in_except"),
        worker_app.send_task("t.retry_bare"),
    )
    drain(worker_app, pool)
    record = in_except.record()
    assert (record.state, record.attempt) == (State.FAILURE, 2)
    assert record.error is not None
    assert record.error["type"] == "ConnectionError"
    assert record.error["message"] == (
        "max_retries (1) exceeded; last error: ConnectionError: device did not answer"
    )
    assert 'raise ConnectionError("device did not answer")' in record.error["traceback"]
    assert record.attempts[0]["error"] == {
        "type": "ConnectionError",
        "message": "device did not answer",
    }
    record = bare.record()
    assert record.error is not None
    assert (record.error["type"], record.error["message"]) == (
        "MaxRetriesExceeded",
        "max_retries (1) exceeded; the task asked to be retried without an error",
    )


def test_a_task_calling_sys_exit_fails_with_its_code_and_the_worker_goes_on(
    worker_app: App, pool: str
) -> None:
    """SystemExit from a task body is that task's failure (before, it ended a process
    pool child, and escaped the other pools' threads)."""
    jobs = [worker_app.send_task(name, (3,)) for name in ("t.exit", "t.async_exit")]
    after = worker_app.send_task("t.add", (1, 2))
    drain(worker_app, pool, concurrency=1, prefetch=0)
    assert after.get(timeout=1) == 3
    for job in jobs:
        record = job.record()
        assert (record.state, record.lost_leases) == (State.FAILURE, 0)
        assert record.error is not None
        assert record.error["type"] == "SystemExit"
        assert record.error["code"] == 3
        assert record.error["message"] == "the task called sys.exit(3)"
        assert record.error["hint"].startswith("a task should raise, not exit")
        assert retry_note(record) == (
            "not retried: the task called sys.exit(3); a task should raise, not exit"
        )


def test_soft_time_limit_can_be_caught(worker_app: App, pool: str) -> None:
    job = worker_app.send_task("t.soft")
    drain(worker_app, pool)
    assert job.get(timeout=1) == "cleaned up"


def test_hard_time_limit_fails_the_job_and_the_pool_goes_on(worker_app: App, pool: str) -> None:
    hung = worker_app.send_task("t.hard")
    after = [worker_app.send_task("t.add", (1, i)) for i in range(3)]
    drain(worker_app, pool)
    record = hung.record()
    assert record.state is State.FAILURE
    assert record.error is not None
    assert (record.error["type"], record.error["limit"]) == ("TimeLimitExceeded", "hard")
    assert [j.get(timeout=1) for j in after] == [1, 2, 3]


def test_async_hard_limit_cancels_the_coroutine(worker_app: App, pool: str) -> None:
    job = worker_app.send_task("t.async_hang")
    drain(worker_app, pool)
    error = job.record().error
    assert error is not None
    assert (error["type"], error["limit"]) == ("TimeLimitExceeded", "hard")


def test_unknown_task_and_bad_payload_fail_with_the_reason(worker_app: App, pool: str) -> None:
    unknown = worker_app.send_task("t.does_not_exist", (1,))
    corrupt = worker_app.send_task("t.add", (1, 2))
    good = worker_app.send_task("t.add", (2, 2))
    write_raw_payload(worker_app.backend, corrupt.id, b"\x80not json")
    drain(worker_app, pool)
    unknown_error = unknown.record().error
    assert unknown_error is not None
    assert unknown_error["type"] == "UnknownTask"
    assert "t.does_not_exist" in unknown_error["message"]
    corrupt_error = corrupt.record().error
    assert corrupt_error is not None
    assert corrupt_error["type"] == "UndecodablePayload"
    assert good.get(timeout=1) == 4


def test_unserializable_result_fails_clearly(worker_app: App, pool: str) -> None:
    job = worker_app.send_task("t.bad_result")
    drain(worker_app, pool)
    error = job.record().error
    assert error is not None
    assert error["type"] == "SerializationError"
    assert "return value" in error["message"]


def test_expired_job_is_not_run(worker_app: App, pool: str, ledger: Path) -> None:
    # A job already expired at enqueue is refused there: this one expires while it waits.
    job = worker_app.send_task("t.ledger", (str(ledger),), expires=0.05)
    expires_at = job.record().expires_at or 0
    wait_until(lambda: worker_app.backend.now() > expires_at, what="the job to expire")
    drain(worker_app, pool)
    record = job.record()
    assert record.state is State.REVOKED
    assert record.error is not None
    assert record.error["type"] == "Expired"
    assert ledger_lines(ledger) == []


def test_revoked_queued_job_never_runs(worker_app: App, pool: str, ledger: Path) -> None:
    doomed = worker_app.send_task("t.ledger", (str(ledger),))
    kept = worker_app.send_task("t.ledger", (str(ledger),))
    doomed.revoke()
    drain(worker_app, pool)
    assert doomed.state is State.REVOKED
    assert kept.get(timeout=1) == kept.id
    assert {line[1] for line in ledger_lines(ledger)} == {kept.id}


def test_priority_order_within_a_queue(worker_app: App, pool: str) -> None:
    jobs = [worker_app.send_task("t.add", (p, 0), priority=p) for p in [1, 5, 9, 3]]
    drain(worker_app, pool, concurrency=1, prefetch=0)  # one claim per job: claim times order them
    started = sorted(jobs, key=lambda j: j.record().started_at or 0)
    assert [j.record().priority for j in started] == [9, 5, 3, 1]
