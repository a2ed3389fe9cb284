"""``conveyor doctor`` and ``inspect workers`` the moment a worker dies holding a job:
a real process-pool worker, SIGKILLed with its process group, on every shared backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from conveyor import App, State
from conveyor.backends.base import WORKER_TTL
from conveyor.control.doctor import RESCUE_GRACE
from conveyor.control.liveness import liveness
from conveyor.control.util import clock

from ..worker.conftest import ledger_lines, wait_until
from .conftest import cli_env, run_cli


def test_doctor_names_a_killed_worker_and_the_job_it_holds_at_once(
    shared_url: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    env = cli_env(shared_url)
    producer = App("producer", backend=shared_url)
    ledger = tmp_path / "ledger.txt"
    worker = conveyor_proc("worker", "-P", "process", "-c", "1", "-n", "doomed", env=env)
    held = producer.send_task("t.ledger", (str(ledger), 30.0))
    wait_until(lambda: ledger_lines(ledger), 30, "the long job to start")
    # A process-pool child may start the job before its worker's first heartbeat registers it.
    (info,) = wait_until(producer.backend.workers, 10, "the worker to register")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    killed_at = time.monotonic()
    waiting = producer.send_task("t.add", (1, 2))  # its queue's only consumer is dead
    wait_until(
        lambda: not liveness(producer.backend.workers()[0], producer.backend.now()).alive,
        10,
        "the worker's heartbeat to be overdue",
    )

    sick = run_cli(env, "doctor")
    # Long before the old checks could see anything: the dead worker's registry entry lasts
    # WORKER_TTL, and an expired lease was reported RESCUE_GRACE after it expired.
    assert time.monotonic() - killed_at < min(RESCUE_GRACE, WORKER_TTL)
    report = json.loads(run_cli(env, "doctor", "--json").stdout)
    workers = json.loads(run_cli(env, "inspect", "workers", "--json").stdout)
    table = run_cli(env, "inspect", "workers").stdout
    record = held.record()
    assert (record.state, record.worker) == (State.STARTED, info.id)  # nobody rescued it yet

    assert sick.returncode == 1, sick.stdout
    assert f"worker doomed (host {info.host}, pid {info.pid}) stopped heartbeating" in sick.stdout
    assert f"{held.id} (t.ledger in 'default', lease expire" in sick.stdout
    assert clock(record.lease_until or 0) in sick.stdout  # when it can return
    assert "no live worker runs to return them" in sick.stdout
    assert "start a worker" in sick.stdout
    found = {f["check"]: f for f in report["findings"]}
    assert report["healthy"] is False
    assert found["dead-worker"]["severity"] == "error"
    dead = found["dead-worker"]["data"]
    assert (dead["worker"]["name"], dead["worker"]["pid"]) == ("doomed", info.pid)
    assert dead["worker"]["silent_for"] > dead["worker"]["dead_after"]
    assert dead["jobs"] == [
        {"id": held.id, "task": "t.ledger", "queue": "default", "lease_until": record.lease_until}
    ]
    assert dead["rescue_interval"] == 0.3  # tests.apps.basic's
    # The dead worker no longer counts as a consumer: the waiting job's queue has none.
    assert "'default' holds 1 waiting job(s)" in found["queue-without-worker"]["problem"]
    assert "presumed dead: doomed" in found["queue-without-worker"]["problem"]
    (shown,) = workers
    assert (shown["name"], shown["alive"]) == ("doomed", False)
    assert "dead? silent" in table

    # Two slots: the rescued 30 s job, older, may be claimed first; t.add must not wait for it.
    conveyor_proc("worker", "-P", "process", "-c", "2", env=env)  # rescues, then runs both
    assert waiting.get(timeout=30) == 3
    wait_until(lambda: held.record().worker not in {None, info.id}, 30, "the held job's rescue")
    rescued = run_cli(env, "doctor", "--json")
    assert rescued.returncode == 0, rescued.stdout  # what is left is worth a look, not stuck
    findings = json.loads(rescued.stdout)["findings"]
    assert len(findings) == 1, findings  # (once, under load 13, a second one: named here next time)
    (left,) = findings
    assert (left["check"], left["severity"], left["data"]["jobs"]) == ("dead-worker", "warning", [])
