"""The app the API tests serve and their worker subprocesses run. Timers are shrunk
(2 s leases) so a terminated job is seen within a second."""

from __future__ import annotations

import os
import time

from conveyor import App
from conveyor.context import TaskContext

app = App("webtests", lease_seconds=2.0, heartbeat_interval=0.2, rescue_interval=0.3,
          default_max_retries=0, http_tasks=["web.*"])  # fmt: skip


@app.task(name="web.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="web.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="web.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="web.media.encode", queue="media")
def encode(name: str) -> str:
    return f"{name}.webm"


@app.task(name="web.progress", bind=True)
def progress(self: TaskContext) -> str:
    self.update_progress(50, message="half way")
    return "done"


@app.task(name="internal.secret")
def secret() -> str:
    """Registered but not exposed over HTTP (http_tasks is web.*)."""
    return "never over HTTP"


@app.task(name="web.fail_until")
def fail_until(path: str) -> str:
    """Fails until the file at ``path`` exists: a FAILURE a retry can fix."""
    with open(path) as flag:
        return flag.read()


@app.task(name="web.total")
def total(values: list[int]) -> int:
    return sum(values)


@app.task(name="web.gate")
def gate(path: str, value: int) -> int:
    """Fails until the file at ``path`` exists: a FAILURE a retry by hand can fix."""
    if not os.path.exists(path):
        raise ValueError(f"gate closed: {path} is missing")
    return value
