"""Worker features observed from outside while it runs: progress, cooperative revoke,
the registry, acknowledgement on start, default queues, the CLI banner."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, State
from conveyor.worker import Worker

from .conftest import ledger_lines, wait_until

Start = Callable[..., tuple[Worker, threading.Thread]]
ROOT = Path(__file__).resolve().parents[2]


def test_progress_is_readable_while_the_job_runs(
    worker_app: App, start_worker: Start, ledger: Path
) -> None:
    start_worker()
    job = worker_app.send_task("t.progress", (str(ledger),))
    wait_until(lambda: ledger_lines(ledger), what="the task to report progress")
    assert job.state is State.STARTED
    assert job.progress == {"percent": 50, "message": "half way", "meta": {"step": 1}}
    Path(f"{ledger}.go").touch()
    job.get(timeout=10)
    assert job.state is State.SUCCESS


def test_thread_pool_terminate_of_a_task_checking_is_revoked_ends_revoked(
    worker_app: App, start_worker: Start, ledger: Path
) -> None:
    start_worker(pool="thread")
    job = worker_app.send_task("t.cooperative", (str(ledger),))
    wait_until(lambda: ledger_lines(ledger), what="the task to start")
    job.revoke(terminate=True)
    wait_until(lambda: job.state is State.REVOKED, 10, "REVOKED")
    error = job.error
    assert error is not None
    assert error["type"] == "Terminated"


def test_terminate_seen_by_the_task_first_still_ends_revoked(
    worker_app: App, start_worker: Start, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No heartbeat after the first: only the task's own is_revoked() can see the revoke.
    # CI once saw that path win the race and the job end SUCCESS ("noticed").
    monkeypatch.setattr(worker_app.conf, "heartbeat_interval", 600.0)
    monkeypatch.setattr(worker_app.conf, "lease_seconds", 1200.0)  # a beat within a lease
    start_worker(pool="thread")
    job = worker_app.send_task("t.cooperative", (str(ledger),))
    wait_until(lambda: ledger_lines(ledger), what="the task to start")
    job.revoke(terminate=True)
    wait_until(lambda: job.state.finished, 10, "the job to end")
    assert job.state is State.REVOKED
    assert (job.error or {})["type"] == "Terminated"


def test_worker_registers_and_leaves_the_registry(worker_app: App, start_worker: Start) -> None:
    worker, thread = start_worker(pool="thread", concurrency=3, name="alpha")
    (info,) = wait_until(worker_app.backend.workers, what="registration")
    assert (info.name, info.pool, info.concurrency, info.pid) == ("alpha", "thread", 3, os.getpid())
    assert info.queues == worker_app.declared_queues()
    assert "t.add" in info.tasks
    worker.stop()
    thread.join(10)
    assert worker_app.backend.workers() == []


def test_default_queues_are_every_declared_queue(worker_app: App) -> None:
    job = worker_app.send_task("t.media.encode")
    assert job.record().queue == "media"
    assert Worker(worker_app, pool="thread", burst=True).run() == 0
    assert job.get(timeout=1) == "encoded"


def test_job_acked_on_start_is_marked_and_runs(worker_app: App) -> None:
    job = worker_app.send_task("t.early")
    assert job.record().headers == {"acks_late": False}
    Worker(worker_app, pool="thread", burst=True).run()
    assert job.state is State.SUCCESS


def test_cli_worker_prints_what_it_runs_and_hides_the_password(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONVEYOR_BACKEND": f"sqlite:///{tmp_path / 'x.db'}?user=me",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "-A", "tests.apps.basic:app", "worker", "--burst", "-P", "thread", "-Q", "default,media"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "queues       default, media" in done.stderr
    assert "pool         thread x 8" in done.stderr
    assert "t.add" in done.stderr
    from conveyor.cli.worker import hide_password

    assert hide_password("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"


def test_cli_without_an_app_says_how_to_give_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_APP"}
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "-A myproject.tasks:app" in done.stderr
    assert "CONVEYOR_APP" in done.stderr
    assert "conveyor -A conveyor.demo.tasks:app doctor" in done.stderr  # the demo's, by name
    bad = subprocess.run([sys.executable, "-m", "conveyor", "-A", "no_such_module:app", "worker"],
                         env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode != 0
    assert "cannot import 'no_such_module'" in bad.stderr


def test_manual_retry_gets_a_fresh_retry_budget(worker_app: App) -> None:
    from conveyor import control

    job = worker_app.send_task("t.flaky", (99,))  # fails every attempt; max_retries=2
    Worker(worker_app, pool="thread", burst=True).run()
    assert (job.state, job.record().attempt) == (State.FAILURE, 3)
    control.retry_job(worker_app, job.id)
    Worker(worker_app, pool="thread", burst=True).run()
    record = job.record()
    assert (record.state, record.attempt) == (State.FAILURE, 6)
    states = [a["state"] for a in record.attempts]
    assert states == ["RETRY", "RETRY", "FAILURE", "REQUEUED", "RETRY", "RETRY", "FAILURE"]
