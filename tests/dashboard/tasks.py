"""The app the dashboard's browser tests serve, and their worker and scheduler run.
Timers are shrunk (2 s leases, 0.2 s heartbeats) so a terminated job ends within a second."""

from __future__ import annotations

import time

from conveyor import App
from conveyor.context import TaskContext
from conveyor.errors import Terminated

app = App("dashtests", lease_seconds=2.0, heartbeat_interval=0.2, rescue_interval=0.3,
          default_max_retries=0, http_tasks=["dash.*"])  # fmt: skip


@app.task(name="dash.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="dash.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="dash.encode", queue="media")
def encode(name: str) -> str:
    return f"{name}.webm"


@app.task(name="dash.steps", bind=True)
def steps(self: TaskContext, count: int, pause: float) -> int:
    """Reports its progress at every step, for the live progress bar."""
    for step in range(count):
        self.update_progress(100 * step / count, message=f"step {step + 1} of {count}")
        time.sleep(pause)
    return count


@app.task(name="dash.archive", bind=True)
def archive(self: TaskContext, files: int, pause: float) -> int:
    """Stops on a cancel at its next file, as the docs say a task should."""
    for done in range(files):
        if self.is_revoked():
            raise Terminated(f"stopped after {done} of {files} files")
        self.update_progress(100 * done / files, message=f"file {done + 1} of {files}")
        time.sleep(pause)
    return files
