"""Pool-specific behaviour."""

from __future__ import annotations

import time

import pytest

from conveyor import App
from conveyor.errors import ConfigurationError
from conveyor.worker import Worker

from .test_outcomes import drain


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
