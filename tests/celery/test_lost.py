"""Celery counts retries only: a delivery lost with its worker (killed mid-job) runs the
task again without counting as a retry, in ``self.request.retries`` and in
``AsyncResult.retries`` alike (before, the result counted every attempt after the
first). A real worker subprocess, killed with SIGKILL; another on the same host returns
its job at once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.celery import Celery

from ..worker.conftest import wait_until

pytestmark = pytest.mark.slow


def test_a_lost_delivery_is_not_a_retry(
    tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    env = {"CELERY_BROKER_URL": url}
    ledger = tmp_path / "ledger"
    producer = Celery("producer", broker=url, set_as_current=False)
    result = producer.AsyncResult(producer.send_task("lost.flaky", (str(ledger),)).id)
    first = conveyor_proc("-A", "tests.apps.celery_lost:app", "worker", "-P", "thread", env=env)
    wait_until(lambda: ledger.exists(), 30, "the first delivery to start")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    conveyor_proc("-A", "tests.apps.celery_lost:app", "worker", "-P", "thread", env=env)
    assert result.get(timeout=30) == 1  # the task's own count: the retry it asked for
    assert ledger.read_text().split() == ["start", "0", "start", "0", "start", "1"]
    assert result.retries == 1
    attempts = producer.backend.get(result.id).attempts
    assert [a["error"]["type"] for a in attempts[:2]] == ["WorkerLost", "Retry"]


def test_a_job_sent_back_to_its_queue_has_no_info_from_its_last_run() -> None:
    """A job given back by a stopping worker keeps the last run's ``update_state`` meta on
    its record; Celery's ``AsyncResult.info`` of a waiting job is None, not that meta."""
    app = Celery("lost", broker="memory://", set_as_current=False)
    result = app.AsyncResult(app.send_task("lost.convert").id)
    [job] = app.backend.claim(["celery"], "w1", 1, 30.0)
    app.backend.update_progress(job.lease, {"percent": None, "message": None,
                                            "meta": {"celery_state": "PROGRESS", "info": {"page": 3},
                                                     "celery_attempt": job.attempt}})  # fmt: skip
    assert (result.state, result.info) == ("PROGRESS", {"page": 3})
    app.backend.release([job.lease], interrupted=True)
    assert result.state == "PENDING"
    assert result.info is None
    # its next attempt, before it reports progress of its own: not the last run's
    [again] = app.backend.claim(["celery"], "w2", 1, 30.0)
    assert again.attempt == job.attempt + 1
    assert (result.state, result.info) == ("STARTED", None)
