"""A worker SIGKILLed mid-chord: another worker finishes it, and the callback runs once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, chain, chord
from conveyor.task import Signature

from ..worker.conftest import ledger_lines, wait_until

pytestmark = pytest.mark.slow


def test_chord_completes_exactly_once_after_a_worker_is_killed(
    shared_url: str, tmp_path: Path, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url = shared_url

    def start_worker(url: str) -> subprocess.Popen[bytes]:
        return conveyor_proc(
            "-A", "tests.apps.basic:app", "worker", "-c", "2", env={"CONVEYOR_BACKEND": url}
        )

    ledger, calls = tmp_path / "members.txt", tmp_path / "callback.txt"
    producer = App("producer", backend=url)
    members = [Signature("t.slow_value", (i, str(ledger), 0.2), app=producer) for i in range(24)]
    wf = chord(members, Signature("t.collect", (str(calls),), app=producer)).apply_async()
    victim = start_worker(url)
    ends = lambda: [line for line in ledger_lines(ledger) if line[0] == "end"]  # noqa: E731
    wait_until(lambda: len(ends()) >= 4, 30, "some members to finish")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert len(ends()) < len(members)  # killed mid-chord: members still to run...
    assert not ledger_lines(calls)  # ...and the callback not yet
    survivor = start_worker(url)
    try:
        assert wf.get(timeout=60) == sum(range(24))
        assert [line[0] for line in ledger_lines(calls)] == ["callback"]  # exactly once
        assert {line[1] for line in ends()} == set(wf.member_ids()[:-1])
    finally:
        os.killpg(survivor.pid, signal.SIGKILL)
        survivor.wait()


def test_a_chain_routed_with_queue_runs_on_a_worker_of_that_queue_only(
    shared_url: str, conveyor_proc: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The visitor-registration system's call: Celery's routing on a chain whose tasks
    declare no such queue. The later steps are enqueued by the worker, from the stored spec."""
    producer = App("producer", backend=shared_url)  # routes by name, imports no task
    add, identity = Signature("t.add", (1, 2), app=producer), Signature("t.identity", app=producer)
    wf = chain(add, identity, Signature("t.add", (10,), app=producer)).apply_async(
        queue="hikvision"
    )
    worker = conveyor_proc(
        "-A", "tests.apps.basic:app", "worker", "-P", "thread", "-Q", "hikvision",
        env={"CONVEYOR_BACKEND": shared_url},
    )  # fmt: skip
    try:
        assert wf.get(timeout=30) == 13
        assert [r.queue for r in wf.records().values() if r] == ["hikvision"] * 3
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
