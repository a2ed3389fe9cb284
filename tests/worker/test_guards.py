"""Guards on the worker's path: a revoke that outlives a shutdown, and a record whose
workflow headers cannot be read."""

from __future__ import annotations

import threading
from collections.abc import Callable

from conveyor import App, State
from conveyor.records import Lease
from conveyor.worker import Worker

from .conftest import wait_until

Start = Callable[..., tuple[Worker, threading.Thread]]


def test_a_revoked_job_put_back_by_a_shutdown_is_not_run_again(
    worker_app: App, start_worker: Start
) -> None:
    """Revoked (without terminate) while it ran, then released to its queue by its
    worker's shutdown: the next delivery must end it REVOKED, not run it."""
    job = worker_app.send_task("t.add", (1, 2))
    (claimed,) = worker_app.backend.claim(["default"], "gone-worker", 1, 30.0)
    assert job.revoke().outcome == "flagged"
    worker_app.backend.release([Lease(claimed.id, claimed.lease_token or "")], interrupted=True)
    start_worker()
    wait_until(lambda: job.state is State.REVOKED, 20, "the released job to end REVOKED")
    record = job.record()
    assert record.result is None
    assert record.error is not None
    assert "not run again" in record.error["message"]


def test_unreadable_workflow_headers_do_not_stop_the_worker(
    worker_app: App, start_worker: Start
) -> None:
    """Headers Conveyor reads as a continuation, written around the edge check: the job
    ends without follow-ups (logged), and the worker goes on with the next job."""
    broken = worker_app.tasks["t.add"].s(1, 2)
    record = worker_app.build_record(broken, worker_app.backend.now())
    record.headers["wf"] = "not a continuation"
    worker_app.backend.enqueue([record])
    start_worker()
    wait_until(lambda: worker_app.job(record.id).state is State.SUCCESS, 20, "the broken job")
    assert worker_app.send_task("t.add", (2, 2)).get(timeout=20) == 4
