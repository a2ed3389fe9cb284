"""A job of a task the worker does not have: the error says why and what to do.

The common case is a task added after the workers started: the producer runs the new
code, the workers the code they loaded. A real worker subprocess, its app's module
changed on disk while it runs, as a user's editor or deploy changes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, State

from .conftest import SpawnWorker, wait_until

pytestmark = pytest.mark.slow

MODULE = """
from conveyor import App

app = App("stale")


@app.task
def add(x, y):
    return x + y
"""
ADDED = """

@app.task
def mul(x, y):
    return x * y
"""


def test_a_task_added_after_the_worker_started_says_restart_the_workers(
    tmp_path: Path, producer: App, spawn_worker: SpawnWorker
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = code / "staleproj.py"
    module.write_text(MODULE)
    worker = spawn_worker("-P", "thread", app="staleproj:app", env={"PYTHONPATH": str(code)})
    wait_until(lambda: any(w.pid == worker.pid for w in producer.backend.workers()))
    module.write_text(MODULE + ADDED)  # the user adds a task; the producer runs the new code
    job = producer.send_task("staleproj.mul", (2, 3))
    wait_until(lambda: job.record().state is State.FAILURE, what="the job to fail")
    error = job.record().error
    assert error is not None
    assert error["type"] == "UnknownTask"
    message = error["message"]
    assert "is not in this worker's code, which is older than the code that sent the job" in message
    assert f"{module} changed at " in message
    assert message.endswith("restart the workers so they load the new code, then retry the job")
    assert "did you mean" not in message  # the old message's guess at a typo: 'staleproj.add'
    # The original error stays in the stored traceback.
    assert "no task named 'staleproj.mul' is registered" in error["traceback"]


def test_a_task_no_code_has_keeps_the_typo_advice_and_says_restart_if_new(
    worker_app: App, start_worker: Callable[..., object]
) -> None:
    start_worker()
    job = worker_app.send_task("t.ad", (1, 2))
    wait_until(lambda: job.record().state is State.FAILURE, what="the job to fail")
    error = job.record().error
    assert error is not None
    message = error["message"]
    assert message.startswith("no task named 't.ad' is registered on app 'tests'; did you mean")
    assert message.endswith(
        "; if the task was added after this worker started, restart the workers so they "
        "load the new code, then retry the job; else fix the task name, or run a worker "
        "whose app registers it"
    )
