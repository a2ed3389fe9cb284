"""Pool-specific behaviour."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import pickle
import platform
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from conveyor import App
from conveyor.errors import ConfigurationError
from conveyor.records import JobRecord, Outcome
from conveyor.states import State
from conveyor.worker import Worker
from conveyor.worker.pools import Held, Stored, zygote
from conveyor.worker.pools.messages import Acked, Bundle, Claimed, Message

from .conftest import wait_until
from .test_outcomes import drain


def test_a_job_record_crosses_a_pipe_whole() -> None:
    """Children pickle the records they hold for their worker (a compact form of our own)."""
    values: dict[str, object] = {}
    for i, f in enumerate(dataclasses.fields(JobRecord)):
        kind = str(f.type)
        values[f.name] = (
            State.RETRY if f.name == "state" else b"\x00p" if "bytes" in kind
            else {"k": [i]} if "dict" in kind else [{"n": i}] if "list" in kind
            else float(i) + 0.5 if "float" in kind else i if "int" in kind else f"v{i}"
        )  # fmt: skip
    record = JobRecord(**values)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(record, pickle.HIGHEST_PROTOCOL)) == record
    assert len(set(map(repr, values.values()))) == len(values)  # a field swap would show


def test_an_outcome_crosses_a_pipe_whole() -> None:
    """Children pickle every outcome they store for their worker (``Outcome.__reduce__``)."""
    outcome = Outcome("j1", "tok", State.RETRY, {"r": [1]}, {"type": "E"}, 2.5, 7.25)
    assert pickle.loads(pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)) == outcome
    bare = Outcome("j2", "t2", State.SUCCESS)
    assert pickle.loads(pickle.dumps(bare, pickle.HIGHEST_PROTOCOL)) == bare


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_process_pool_soft_limit_interrupts_a_long_c_call(worker_app: App) -> None:
    job = worker_app.send_task("t.soft_in_c")
    started = time.monotonic()
    drain(worker_app, "process")
    assert job.get(timeout=1) == "cleaned up"
    assert time.monotonic() - started < 4  # not after the 5 s sleep returned


def test_process_pool_refuses_memory(make_backend: object) -> None:
    app = App("m", backend="memory://")
    app.main = "tests.apps.basic:app"
    with pytest.raises(ConfigurationError, match="share"):
        Worker(app, pool="process")


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_process_pool_refuses_an_unknown_start_method(worker_app: App) -> None:
    with pytest.raises(
        ConfigurationError, match="unknown start method 'vfork'; choose one of fork"
    ):
        Worker(worker_app, pool="process", start_method="vfork")


@pytest.mark.skipif(not zygote.available(), reason="the fork start method is Linux-only")
@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_pool_started_beside_other_threads_uses_the_fork_server(worker_app: App) -> None:
    """Forking while other threads run would copy their locks mid-use: the pool says so
    and starts its children from a fork server instead."""
    job = worker_app.send_task("t.add", (1, 1))
    other = threading.Event()
    bystander = threading.Thread(target=other.wait, name="bystander")
    bystander.start()
    try:
        worker = Worker(worker_app, pool="process", concurrency=1, burst=True, start_method="fork")
        assert worker.run() == 0
    finally:
        other.set()
        bystander.join()
    assert job.get(timeout=1) == 2
    assert worker.pool.start_method == "forkserver"  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_max_tasks_per_child_recycles_children(worker_app: App) -> None:
    jobs = [worker_app.send_task("t.pid") for _ in range(6)]
    drain(worker_app, "process", concurrency=1, max_tasks_per_child=2)
    pids = [j.get(timeout=1) for j in jobs]
    assert len(set(pids)) == 3
    assert all(pids[i] == pids[i + 1] for i in (0, 2, 4))


@pytest.mark.parametrize("backend_kind", ["sqlite", "redis", "postgres"])
def test_max_memory_per_child_recycles_a_grown_child(worker_app: App) -> None:
    jobs = [worker_app.send_task("t.grow", (64,)) for _ in range(3)]
    drain(worker_app, "process", concurrency=1, max_memory_per_child=48 * 1024)
    pids = [j.get(timeout=1) for j in jobs]
    assert len(set(pids)) == 3  # each child went over 48 MiB and was replaced; nothing lost


def claim_sizes(jobs: list[Any]) -> list[int]:
    """The claims that took ``jobs``, in order, as sizes: a claim stamps every job it takes
    with the same ``started_at``."""
    sizes: dict[float, int] = {}
    for job in jobs:
        started = job.record().started_at
        sizes[started] = sizes.get(started, 0) + 1
    return [sizes[t] for t in sorted(sizes)]


@pytest.mark.parametrize("backend_kind", ["sqlite", "postgres"])
def test_a_fresh_child_batches_soon_after_a_cold_first_job(worker_app: App) -> None:
    """Auto prefetch, process pool: a fresh child claims one job, then doubles its batch
    while the last batch's jobs ran short, so one slow first run (0.3 s, as a first call
    importing a library takes) costs one batch of one, not the dozens of one-job claims an
    average over many runs took to forget it."""
    jobs = [worker_app.send_task("t.cold", (0.3,)) for _ in range(40)]
    drain(worker_app, "process", concurrency=1)
    sizes = claim_sizes(jobs)
    assert sizes[:2] == [1, 1]  # the cold job alone, then one: 0.3 s says nothing fits
    assert all(b <= 2 * a for a, b in itertools.pairwise(sizes))  # slow start
    assert len(sizes) <= 10, sizes  # 1, 1, 2, 4, 8, 16, 8 when the machine keeps up


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_auto_prefetch_claims_ahead_only_while_jobs_are_short(worker_app: App) -> None:
    worker = Worker(worker_app, pool="thread", concurrency=2)
    assert worker.capacity == 2  # fair until jobs prove short

    def held(prefix: str, seconds: float, n: int, w: Worker = worker) -> None:
        for i in range(n):
            w._held_since[f"{prefix}{i}"] = 100.0
            w._note_done(f"{prefix}{i}", 100.0 + seconds)

    held("short", 0.002, 5)
    assert worker.capacity == 2 + 8  # 4 per slot
    held("middling", 0.1, 1)
    assert worker.capacity == 10  # between the thresholds: no flapping
    held("long", 2.0, 5)
    assert worker.capacity == 2
    fair = Worker(worker_app, pool="thread", concurrency=2, prefetch=0)
    held("short", 0.002, 5, fair)
    assert fair.capacity == 2  # an explicit --prefetch is kept


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_auto_prefetch_leaves_long_jobs_to_a_second_worker(worker_app: App) -> None:
    """A fresh worker claims no more than its slots: long jobs are shared with a second
    worker instead of queueing behind the first one's running job."""
    slow = [worker_app.send_task("t.ledger", ("/dev/null", 0.3)) for _ in range(4)]
    first = Worker(worker_app, pool="thread", concurrency=1, name="first", burst=True)
    second = Worker(worker_app, pool="thread", concurrency=1, name="second", burst=True)
    runners = [threading.Thread(target=w.run) for w in (first, second)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(10)
    assert {job.record().worker for job in slow} == {first.id, second.id}


@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_delivery_ending_late_does_not_drop_the_same_jobs_next_delivery(
    worker_app: App,
) -> None:
    """A process child can claim a job again (requeued after its lease was lost) before
    the end of its earlier delivery is reported: the worker must go on renewing the new
    lease, so it forgets deliveries by lease, not by job id."""
    worker_app.send_task("t.add", (1, 2))
    worker = Worker(worker_app, pool="thread", concurrency=1)
    (first,) = worker_app.backend.claim(["default"], worker.id, 1, 30)
    second = dataclasses.replace(first, lease_token="a-newer-token")
    late = Outcome(first.id, first.lease_token or "", State.SUCCESS)
    worker._handle([Held([second]), Stored([late], refused=[first.id])])
    assert worker._held[first.id].lease_token == "a-newer-token"
    worker._handle([Stored([Outcome(first.id, "a-newer-token", State.SUCCESS)], refused=[])])
    assert first.id not in worker._held


@pytest.mark.parametrize("backend_kind", ["sqlite", "redis"])
def test_a_childs_records_and_outcome_of_a_job_reach_the_worker_in_one_message(
    worker_app: App,
    start_worker: Callable[..., tuple[Worker, threading.Thread]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An idle worker's job: the child sends its records (``Claimed``) and its stored
    outcome (``Acked``) in one message, so the worker's supervisor wakes once a job, not
    twice (and its consumer thread with it)."""
    got: list[Message] = []
    recv = Connection.recv

    def spy(conn: Connection) -> Any:
        message = recv(conn)
        if isinstance(message, Message):
            got.append(message)
        return message

    monkeypatch.setattr(Connection, "recv", spy)
    start_worker(pool="process", concurrency=1)
    for _ in range(3):
        job = worker_app.send_task("t.add", (1, 2))
        assert job.get(timeout=20) == 3
        acked = functools.partial(lambda job_id: any(job_id in ids_acked(m) for m in got), job.id)
        wait_until(acked, 10, "the outcome at the worker")
    bundles = [m for m in got if isinstance(m, Bundle | Claimed | Acked)]
    assert [type(m) for m in bundles] == [Bundle] * 3
    for bundle in bundles:
        assert isinstance(bundle, Bundle)
        claimed, acked = bundle.messages
        assert isinstance(claimed, Claimed)
        assert isinstance(acked, Acked)
        assert [r.id for r in claimed.records] == [o.job_id for o in acked.outcomes]


def ids_acked(message: Message) -> list[str]:
    inner = message.messages if isinstance(message, Bundle) else (message,)
    return [o.job_id for m in inner if isinstance(m, Acked) for o in m.outcomes]


def blocked_in_read(pid: int) -> list[int]:
    """The threads of ``pid`` blocked in read(2) (x86-64 Linux: system call 0)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "syscall").read_text().split()[0] == "0":
                found.append(int(task.name))
    return found


def switches(pid: int, tid: int) -> int:
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() != "x86_64",
    reason="reads x86-64 Linux system call numbers from /proc",
)
@pytest.mark.parametrize("backend_kind", ["sqlite"])
def test_a_childs_listener_sleeps_while_its_worker_reads_its_reports(
    worker_app: App, start_worker: Callable[..., tuple[Worker, threading.Thread]]
) -> None:
    """A child's listener waits for orders, and none come while jobs run: it must not wake.
    Over one two-way socket it woke each time the worker read a report (the kernel wakes a
    socket's waiters when its peer frees write space): once a job, for nothing."""
    worker, _ = start_worker(pool="process", concurrency=1)
    assert worker_app.send_task("t.add", (1, 2)).get(timeout=20) == 3
    (pid,) = worker.pool.child_pids()  # type: ignore[attr-defined]
    (listener,) = wait_until(lambda: blocked_in_read(pid), 10, "the listener in read(2)")
    before = switches(pid, listener)
    for _ in range(20):
        assert worker_app.send_task("t.add", (1, 2)).get(timeout=20) == 3
    time.sleep(0.2)  # the last report read
    assert switches(pid, listener) - before < 3
