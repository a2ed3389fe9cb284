"""Each lifecycle event is emitted exactly once per transition, by the process that made
it, through a real worker subprocess on every backend several processes can share.

The worker runs tests/apps/events.py, whose subscriber appends ``kind who pid`` per event
to a ledger file; the test process subscribes the same writer to its producer app (it
enqueues, revokes waiting jobs, pauses queues). Each test drives one transition, waits
for its event, stops the worker (so nothing is still on its way) and counts every line.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.control.queues import pause_queue, resume_queue
from conveyor.task import Signature

from ..apps.events import ENV, ledger_writer
from .conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return tmp_path / "events.txt"


@pytest.fixture
def producer(shared_url: str, events: Path) -> Iterator[App]:
    app = App("producer", backend=shared_url)
    app.events.subscribe(ledger_writer(str(events)))
    yield app
    app.backend.close()


@pytest.fixture
def pool() -> str:
    return "process"


@pytest.fixture
def worker(
    shared_url: str, events: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]], pool: str
) -> subprocess.Popen[bytes]:
    """A worker of tests/apps/events.py (one slot of ``pool``), up: its ``worker.up`` is
    in the ledger."""
    proc = conveyor_proc(
        "-A", "tests.apps.events:app", "worker", "-l", "info", "-P", pool, "-c", "1",
        env={"CONVEYOR_BACKEND": shared_url, ENV: str(events)},
    )  # fmt: skip
    wait_until(lambda: seen(events, "worker.up"), 30, "the worker to be up")
    return proc


def lines(events: Path) -> list[tuple[str, str, int]]:
    return [(kind, who, int(pid)) for kind, who, pid in ledger_lines(events)]


def seen(events: Path, kind: str, who: str | None = None) -> list[int]:
    """The pids that emitted ``kind`` (for ``who``)."""
    return [pid for k, w, pid in lines(events) if k == kind and who in (None, w)]


def of(events: Path, who: str) -> Counter[str]:
    return Counter(kind for kind, w, _ in lines(events) if w == who)


def stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop the worker gracefully: every event it (or its children) had to emit is written."""
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def run(producer: App, events: Path, name: str, *args: object) -> str:
    """Enqueue one job and wait for its final event."""
    job_id = producer.enqueue_many([Signature(name, args)])[0].id
    finals = ("job.succeeded", "job.failed", "job.revoked")
    wait_until(lambda: any(seen(events, k, job_id) for k in finals), 30, f"{name} to end")
    return job_id


def children(events: Path, worker: subprocess.Popen[bytes]) -> set[int]:
    """The pids that emitted job events other than the test's and the worker's own."""
    return {pid for kind, _, pid in lines(events) if kind.startswith("job.")} - {
        os.getpid(),
        worker.pid,
    }


@pytest.mark.parametrize(
    ("task", "told"),
    [
        ("e.ok", {"job.started": 1, "job.succeeded": 1}),
        ("e.fail", {"job.started": 1, "job.failed": 1}),
        ("e.flaky", {"job.started": 2, "job.retried": 1, "job.succeeded": 1}),
        ("e.progress", {"job.started": 1, "job.progressed": 1, "job.succeeded": 1}),
    ],
)
def test_each_transition_of_a_run_is_told_once_by_the_child_running_it(
    producer: App, worker: subprocess.Popen[bytes], events: Path, task: str, told: dict[str, int]
) -> None:
    job_id = run(producer, events, task)
    stop(worker)
    assert of(events, job_id) == {"job.enqueued": 1, **told}
    assert seen(events, "job.enqueued", job_id) == [os.getpid()]
    (child,) = children(events, worker)  # the child ran the job and stored its outcome
    assert {pid for kind, who, pid in lines(events) if who == job_id} == {os.getpid(), child}


def test_revoking_a_waiting_job_is_revoked_once_by_the_revoker(
    producer: App, worker: subprocess.Popen[bytes], events: Path
) -> None:
    job = producer.enqueue_many([Signature("e.ok", (), {}, {"countdown": 60})])[0]
    job.revoke()
    job.revoke()  # already revoked: no second transition
    stop(worker)
    assert of(events, job.id) == {"job.enqueued": 1, "job.revoked": 1}
    assert seen(events, "job.revoked", job.id) == [os.getpid()]


def test_terminating_a_running_job_is_revoked_once_by_the_worker(
    producer: App, worker: subprocess.Popen[bytes], events: Path
) -> None:
    job = producer.enqueue_many([Signature("e.sleep", (30,))])[0]
    wait_until(lambda: seen(events, "job.started", job.id), 30, "the job to start")
    job.revoke(terminate=True)
    wait_until(lambda: seen(events, "job.revoked", job.id), 20, "the job to be revoked")
    stop(worker)
    assert job.state is State.REVOKED
    assert of(events, job.id) == {"job.enqueued": 1, "job.started": 1, "job.revoked": 1}
    # The child was killed: the worker stored its outcome and told it.
    assert seen(events, "job.revoked", job.id) == [worker.pid]


def test_a_killed_child_is_lost_once_and_the_job_runs_again(
    producer: App, worker: subprocess.Popen[bytes], events: Path
) -> None:
    job = producer.enqueue_many([Signature("e.hang_once", ())])[0]
    (child,) = wait_until(lambda: seen(events, "job.started", job.id), 30, "the job to start")
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: seen(events, "job.succeeded", job.id), 30, "the job to run again")
    stop(worker)
    assert of(events, job.id) == {
        "job.enqueued": 1, "job.started": 2, "job.lost": 1, "job.succeeded": 1,
    }  # fmt: skip
    assert seen(events, "job.lost", job.id) == [worker.pid]


def test_pause_and_resume_are_told_once_by_the_caller(
    producer: App, worker: subprocess.Popen[bytes], events: Path
) -> None:
    pause_queue(producer, "default")
    resume_queue(producer, "default")
    stop(worker)
    assert of(events, "default") == {"queue.paused": 1, "queue.resumed": 1}
    assert seen(events, "queue.paused") == seen(events, "queue.resumed") == [os.getpid()]


def test_a_worker_is_up_once_and_down_once(
    producer: App, worker: subprocess.Popen[bytes], events: Path
) -> None:
    stop(worker)
    ((_, worker_id, _),) = [line for line in lines(events) if line[0] == "worker.up"]
    assert of(events, worker_id) == {"worker.up": 1, "worker.down": 1}
    assert seen(events, "worker.up") == seen(events, "worker.down") == [worker.pid]


@pytest.mark.parametrize("pool", ["thread"])
def test_the_thread_pool_tells_the_same_events_from_the_worker(
    producer: App, worker: subprocess.Popen[bytes], events: Path
) -> None:
    ok, failed, flaky = (run(producer, events, name) for name in ("e.ok", "e.fail", "e.flaky"))
    stop(worker)
    assert of(events, ok) == {"job.enqueued": 1, "job.started": 1, "job.succeeded": 1}
    assert of(events, failed) == {"job.enqueued": 1, "job.started": 1, "job.failed": 1}
    assert of(events, flaky) == {
        "job.enqueued": 1, "job.started": 2, "job.retried": 1, "job.succeeded": 1,
    }  # fmt: skip
    assert children(events, worker) == set()  # all in the worker's own process
