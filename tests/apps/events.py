"""The app of the lifecycle event tests (tests/worker/test_events_emitted.py).

A subscriber to every event type appends one line per event, ``kind who pid`` (who: the
job id, the worker id or the queue), to the ledger file named by ``CONVEYOR_TEST_EVENTS``,
read once, at import. It is subscribed at import, as a user's app does, so a worker and
every one of its process-pool children (forked from it or importing this module) have it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from conveyor import App
from conveyor.context import TaskContext
from conveyor.events import Event, JobEvent, WorkerEvent

ENV = "CONVEYOR_TEST_EVENTS"

app = App(
    "events", lease_seconds=2.0, heartbeat_interval=0.3, rescue_interval=0.3, default_max_retries=3
)


def ledger_writer(path: str) -> Callable[[Event], None]:
    """A subscriber that appends ``kind who pid`` for each event to ``path``."""

    def write(event: Event) -> None:
        if isinstance(event, JobEvent):
            who = event.job_id
        elif isinstance(event, WorkerEvent):
            who = event.worker_id
        else:
            who = getattr(event, "queue", "?")
        with open(path, "a") as ledger:  # one short append: lines of processes never mix
            ledger.write(f"{event.kind} {who} {os.getpid()}\n")

    return write


LEDGER = os.environ.get(ENV)
if LEDGER:
    app.events.subscribe(ledger_writer(LEDGER))


@app.task(name="e.ok")
def ok() -> int:
    return 1


@app.task(name="e.fail")
def fail() -> None:
    raise ValueError("it fails for good")


@app.task(name="e.flaky", bind=True, autoretry_for=(ConnectionError,), retry_backoff=0.05)
def flaky(self: TaskContext) -> int:
    if self.request.attempt < 2:
        raise ConnectionError("the first attempt fails")
    return self.request.attempt


@app.task(name="e.progress", bind=True)
def progress(self: TaskContext) -> int:
    self.update_progress(50, "half way")
    return 1


@app.task(name="e.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="e.hang_once", bind=True)
def hang_once(self: TaskContext) -> int:
    """Hangs on its first attempt (for a test to kill its process), returns on the next."""
    if self.request.attempt == 1:
        time.sleep(60)
    return self.request.attempt
