"""A process-pool child killed by its worker (terminate, hard time limit) or from outside
(SIGKILL): the killed job is settled once, the jobs the child held besides it go back to
the queue at once, uncounted, and the pool goes on with one fresh child.

Some run the worker in the test's process (its children are real processes, started
from a fork server), so a test can stop a child with SIGSTOP and count the orders the
worker sends it; others run a real worker subprocess, holding a child between its claim
and its lease table with the test hook ``CONVEYOR_TEST_HOLD_CLAIM``. Either way each
holds open the window it names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.task import Signature
from conveyor.worker import Worker
from conveyor.worker.pools import process
from conveyor.worker.pools.messages import Terminate, ToChild
from conveyor.worker.testhooks import HOLD_CLAIM

from .conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow
Start = Callable[..., tuple[Worker, threading.Thread]]
Spawn = Callable[..., subprocess.Popen[bytes]]


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


@pytest.mark.parametrize("backend_kind", ["sqlite", "redis"])
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


def held_pid(path: Path) -> int | None:
    """The pid a child holding its claim wrote (None until it has written it whole)."""
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def test_a_child_killed_between_its_claim_and_its_lease_table_strands_nothing(
    shared_url: str, conveyor_proc: Spawn, tmp_path: Path
) -> None:
    """The backend has leased the job to the child, and the child dies before it writes
    the job into the lease table it shares with its worker (the claim's reply died with
    it): nobody knew of the delivery, so it stayed leased until its lease expired (60 s
    with this app) and then counted as a lost delivery. The worker now finds it by the
    child's lease token prefix and puts it back at once, uncounted."""
    hold, out = tmp_path / "claim-hold", tmp_path / "ran-in"
    producer = App("producer", backend=shared_url)
    job = producer.send_task("s.sleep", (str(out), 0))
    worker = conveyor_proc(
        "-A", "tests.apps.slowbeat:app", "worker", "-l", "info", "-c", "1",
        env={"CONVEYOR_BACKEND": shared_url, HOLD_CLAIM: str(hold)},
    )  # fmt: skip
    first = wait_until(lambda: held_pid(hold), 30, "a child holding its claim")
    claimed = job.record()
    assert claimed.state is State.STARTED
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: held_pid(hold) not in (None, first), 15, "the job claimed again")
    again = job.record()
    assert again.lease_token != claimed.lease_token
    assert (again.attempt, again.lost_leases, again.attempts) == (1, 0, [])  # not counted
    assert again.started_at is not None
    assert claimed.lease_until is not None
    assert again.started_at < claimed.lease_until  # back before the first lease ran out
    hold.unlink()
    assert job.get(timeout=20) is None
    assert int(out.read_text()) not in (first, worker.pid)
    log = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert f"claimed and died before starting: {job.id}" in log
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


@pytest.mark.parametrize("shared_url", ["sqlite", "redis"], indirect=True)
@pytest.mark.parametrize("kill", ["terminate", "hard"])
def test_a_job_claimed_behind_a_killed_one_goes_back_at_once_uncounted(
    shared_url: str, conveyor_proc: Spawn, ledger: Path, kill: str
) -> None:
    """One child claims two jobs at once (``--prefetch 1``); the first is killed, by a
    terminate or at its hard time limit. The second, claimed and never started, goes
    back to the queue as the kill is handled (released: no attempt, no lost delivery)
    and the fresh child runs it."""
    producer = App("producer", backend=shared_url)
    doomed = (
        Signature("t.ledger", (str(ledger), 30)) if kill == "terminate" else Signature("t.hard")
    )
    first, behind = producer.enqueue_many([doomed, Signature("t.ledger", (str(ledger), 0))])
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-l", "info", "-c", "1", "--prefetch", "1",
        env={"CONVEYOR_BACKEND": shared_url},
    )  # fmt: skip
    wait_until(lambda: first.record().state is State.STARTED, 30, "the first job to start")
    assert behind.record().state is State.STARTED  # claimed with it, waiting behind it
    if kill == "terminate":
        wait_until(lambda: started(ledger, first.id), 30, "the first job to run")
        first.revoke(terminate=True)
    wait_until(lambda: behind.record().state is State.SUCCESS, 20, "the job behind it to run")
    record = behind.record()
    assert (record.attempt, record.lost_leases) == (1, 0)
    assert [a["state"] for a in record.attempts] == ["SUCCESS"]  # one run, nothing lost
    ended_as = first.record()
    want = ("REVOKED", "Terminated") if kill == "terminate" else ("FAILURE", "TimeLimitExceeded")
    assert (ended_as.state.value, (ended_as.error or {}).get("type")) == want
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
