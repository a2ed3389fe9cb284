"""A revoke with terminate reaches a real worker subprocess by the backend's push (Redis
pub/sub, PostgreSQL NOTIFY, a poll of a counter on SQLite), not at its next heartbeat:
the app heartbeats every 10 s, and the job must end REVOKED within a couple of seconds,
its child killed (process pool) or its task told (thread pool).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conveyor import App, State

from .conftest import wait_until

pytestmark = pytest.mark.slow
#: Far below the app's heartbeat_interval (10 s): only the push can stop the job in time.
PUSH_BOUND = 3.0


@pytest.mark.parametrize(
    ("pool", "task"),
    [("process", "s.sleep"), ("thread", "s.loop")],  # a thread-pool task stops when it looks
)
def test_terminate_reaches_the_running_job_long_before_the_next_heartbeat(
    shared_url: str,
    conveyor_proc: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    pool: str,
    task: str,
) -> None:
    producer = App("producer", backend=shared_url)
    worker = conveyor_proc(
        "-A", "tests.apps.slowbeat:app", "worker", "-P", pool, "-c", "1",
        env={"CONVEYOR_BACKEND": shared_url},
    )  # fmt: skip
    pid_file = tmp_path / "pid"
    job = producer.send_task(task, (str(pid_file), 30.0))
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), 30, "the job to start")
    child = psutil.Process(int(pid_file.read_text()))
    time.sleep(0.3)  # the case: revoked 0.3 s into the run
    revocation = job.revoke(terminate=True)
    revoked_at = time.monotonic()
    assert revocation.outcome == "terminating"
    wait_until(lambda: job.state is State.REVOKED, 30, "the job to end REVOKED")
    took = time.monotonic() - revoked_at
    assert took < PUSH_BOUND, f"REVOKED {took:.1f}s after the revoke: by heartbeat, not push"
    if pool == "process":  # its child was killed
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    error = job.error
    assert error is not None
    assert error["type"] == "Terminated"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
