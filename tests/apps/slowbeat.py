"""An app whose workers heartbeat only every 10 s, so a revoke they obey sooner came by
the revocation watch's push, not by a heartbeat (``tests/worker/test_revoke_push.py``)."""

from __future__ import annotations

import os
import time

from conveyor import App
from conveyor.context import TaskContext

app = App("slowbeat", heartbeat_interval=10.0, lease_seconds=60.0, rescue_interval=60.0)


@app.task(name="s.sleep")
def sleep(path: str, seconds: float) -> None:
    """Write this process's id to ``path``, then sleep."""
    with open(path, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(seconds)


@app.task(name="s.loop", bind=True)
def loop(self: TaskContext, path: str, seconds: float) -> None:
    """As ``s.sleep``, but stop when the worker says so: a thread-pool task that looks."""
    with open(path, "w") as out:
        out.write(str(os.getpid()))
    end = time.monotonic() + seconds
    while time.monotonic() < end and not self.terminate_requested:
        time.sleep(0.001)
