"""A process-pool child killed by its worker (terminate, hard time limit) or from outside
(SIGKILL): the killed job is settled once, the jobs the child held besides it go back to
the queue at once, and the pool goes on with one fresh child.

These run the worker in the test's process (its children are real processes, started
from a fork server), so a test can stop a child with SIGSTOP and count the orders the
worker sends it: that is how each one holds the window it names open.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.worker import Worker
from conveyor.worker.pools import process
from conveyor.worker.pools.messages import Terminate, ToChild

from .conftest import ledger_lines, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend_kind", ["sqlite", "redis"])]
Start = Callable[..., tuple[Worker, threading.Thread]]


def started(ledger: Path, job_id: str) -> bool:
    return any(line[:2] == ["start", job_id] for line in ledger_lines(ledger))


def ended(ledger: Path, job_id: str) -> bool:
    return any(line[:2] == ["end", job_id] for line in ledger_lines(ledger))


@pytest.fixture
def terminates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the ``Terminate`` orders the pools send their children, as sent."""
    sent: list[str] = []
    tell = process.ProcessPool._tell

    def spy(pool: process.ProcessPool, child: process._Child, message: ToChild) -> None:
        if isinstance(message, Terminate):
            sent.append(message.job_id)
        tell(pool, child, message)

    monkeypatch.setattr(process.ProcessPool, "_tell", spy)
    return sent


def test_two_terminates_answered_together_kill_the_child_once_and_the_pool_goes_on(
    worker_app: App,
    start_worker: Start,
    ledger: Path,
    terminates: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each heartbeat names a job revoked with terminate until its outcome is stored, so
    a child can be told twice and answer twice (``KillMe``). The second answer, read
    while the worker kills the child for the first, must not kill it again: that swapped
    the child twice and stopped the pool (the supervisor failed), so the next job never
    ran. Here the child is stopped while the orders pile up, then let go: it reads both
    and answers both at once."""
    monkeypatch.setattr(process, "TERMINATE_GRACE", 60.0)  # only the child's answers kill it
    long = worker_app.send_task("t.ledger", (str(ledger), 30))
    worker, _ = start_worker(pool="process", concurrency=1)
    wait_until(lambda: started(ledger, long.id), 30, "the long job to start")
    (child,) = worker.pool.child_pids()  # type: ignore[attr-defined]
    os.kill(child, signal.SIGSTOP)
    try:
        long.revoke(terminate=True)
        wait_until(lambda: terminates.count(long.id) >= 2, 20, "two terminate orders")
    finally:
        os.kill(child, signal.SIGCONT)
    wait_until(lambda: long.state is State.REVOKED, 20, "the running job to be stopped")
    assert worker_app.send_task("t.add", (2, 2)).get(timeout=20) == 4  # a fresh child
    assert worker.pool.fatal is None  # type: ignore[attr-defined]
    assert len(worker.pool.child_pids()) == 1  # type: ignore[attr-defined]
    assert child not in worker.pool.child_pids()  # type: ignore[attr-defined]
    assert not ended(ledger, long.id)
    assert long.record().attempts[-1]["error"]["type"] == "Terminated"
