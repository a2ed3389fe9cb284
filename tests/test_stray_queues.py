"""A call that names a queue nothing consumes (a typo: ``queue="defualt"``) is stored,
and the producer warns once per queue name: before, it was accepted silently and only
``doctor`` found the waiting jobs later. Not refused: a queue may be one that workers on
other hosts consume by their own ``-Q``. A real worker subprocess consumes a queue the
producer's app does not declare."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

import pytest

from conveyor import App, stray_queues
from conveyor.celery import Celery
from conveyor.errors import BackendError
from conveyor.records import WorkerInfo

from .worker.conftest import wait_until


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "conveyor.enqueue" and r.levelno == logging.WARNING
    ]


@pytest.mark.slow
def test_a_queue_nothing_consumes_is_warned_of_once(
    shared_url: str,
    conveyor_proc: Callable[..., subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "conveyor.enqueue")
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-P", "thread", "-Q", "cameras",
        env={"CONVEYOR_BACKEND": shared_url},
    )  # fmt: skip
    app = App("producer", backend=shared_url, task_routes={"reports.*": "reports"})
    add = app.task(name="t.add", queue="math")(lambda a, b: a + b)
    wait_until(lambda: any(w.pid == worker.pid for w in app.backend.workers()), 30)

    add.apply_async((1, 2), queue="cameras")  # consumed by a live worker elsewhere
    add.apply_async((1, 2), queue="reports")  # routed to
    add.apply_async((1, 2), queue="default")  # the app's default queue
    assert warnings_of(caplog) == []

    typo = add.apply_async((1, 2), queue="defualt")
    assert typo.record().queue == "defualt"  # stored all the same
    app.send_task("t.add", (1, 2), queue="defualt")
    assert warnings_of(caplog) == [
        "queue 'defualt' is not one app 'producer' declares or routes to (default, math, "
        "reports), and no live worker consumes it. Did you mean 'default'? Jobs sent there "
        "wait until a worker does (conveyor -A <app> worker -Q defualt). Said once per queue in "
        "this process."
    ]


def test_a_celery_apps_apply_async_to_a_stray_queue_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "conveyor.enqueue")
    app = Celery("proj", broker="memory://", set_as_current=False)
    app.conf.task_routes = {"proj.cameras.*": {"queue": "hikvision"}}

    @app.task(name="proj.cameras.snap")
    def snap() -> None: ...

    snap.apply_async(queue="hikvision")
    assert warnings_of(caplog) == []
    snap.apply_async(queue="hikvison")
    snap.delay()  # no queue of its own: the route's
    [said] = warnings_of(caplog)
    assert said.startswith("queue 'hikvison' is not one app 'proj' declares or routes to")
    assert "Did you mean 'hikvision'?" in said


def test_the_queue_names_remembered_are_bounded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A REST API caller may name any number of queues: the memory of those told stays
    bounded, and a name forgotten may be told again."""
    monkeypatch.setattr(stray_queues, "MAX_SEEN", 3)
    caplog.set_level(logging.WARNING, "conveyor.enqueue")
    app = App("bounded", backend="memory://")
    for queue in ["q1", "q2", "q3", "q4", "q1"]:
        app.send_task("t.x", queue=queue)
    told = [said.split("'")[1] for said in warnings_of(caplog)]
    assert told == ["q1", "q2", "q3", "q4", "q1"]
    assert len(app._strays._seen) <= 3


def test_a_queue_whose_check_failed_is_checked_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The workers could not be read at the first call naming the queue (the backend
    blinked): nothing was said then, and the queue was marked as told, so a stray queue
    was never warned of in that process."""
    caplog.set_level(logging.WARNING, "conveyor.enqueue")
    app = App("blink", backend="memory://")
    read = app.backend.workers
    calls = []

    def blinking() -> list[WorkerInfo]:
        calls.append(1)
        if len(calls) == 1:
            raise BackendError("connection refused")
        return read()

    monkeypatch.setattr(app.backend, "workers", blinking)
    app.send_task("t.x", queue="defualt")
    assert warnings_of(caplog) == []
    app.send_task("t.x", queue="defualt")  # within RECHECK_AFTER: not asked again
    assert (warnings_of(caplog), len(calls)) == ([], 1)
    app._strays._blind_until = 0.0  # the window over
    app.send_task("t.x", queue="defualt")
    [said] = warnings_of(caplog)
    assert said.startswith("queue 'defualt' is not one app 'blink' declares")
    assert len(calls) == 2
