"""A process-pool child's give-back thread (``pools/child.py``) looks at the running job
only while its batch has jobs waiting behind it: an idle child's thread sleeps until
then instead of waking every ``GIVE_BACK_EVERY`` seconds (each wake-up of an idle
worker's tree is a chance to delay the next job's pickup)."""

from __future__ import annotations

import pickle
import threading
import time
from multiprocessing import Pipe
from typing import Any

import pytest

from conveyor import App
from conveyor.worker.pools import child
from conveyor.worker.pools.messages import Released
from conveyor.worker.pools.shared import SLOT_BYTES, Slot

from ..contract.helpers import job

_sleep = time.sleep


def test_an_idle_child_s_give_back_thread_does_not_wake(monkeypatch: pytest.MonkeyPatch) -> None:
    app = App("give-back", backend="memory://")
    orders, _ = Pipe(duplex=False)
    reports_in, reports = Pipe(duplex=False)
    conf = child.ChildConfig("tests:app", "memory://", "w", ("default",), None)
    runner = child._Runner(app, conf, child.Link(orders, reports), Slot(bytearray(SLOT_BYTES)))
    runner.storer.thread.start()
    naps: list[float] = []
    thread = threading.Thread(target=runner.give_back, daemon=True)

    def nap(seconds: float) -> None:
        if threading.current_thread() is thread:
            naps.append(seconds)
            seconds = 0.001
        _sleep(seconds)

    monkeypatch.setattr(child.time, "sleep", nap)
    monkeypatch.setattr(child, "GIVE_BACK_AFTER", 0.0)
    thread.start()
    _sleep(0.2)
    assert naps == []  # before: a look every GIVE_BACK_EVERY, batch or none
    # A batch of two: its first job runs (long enough), the second waits behind it.
    first, second = job(app.backend), job(app.backend)
    runner.running, runner.running_since = first.id, time.monotonic() - 1.0
    runner.rest = [second]
    runner._behind.set()  # as _run_batch does for a batch of more than one job
    assert reports_in.poll(5.0)
    message: Any = pickle.loads(reports_in.recv_bytes())
    assert isinstance(message, Released)
    assert [lease.job_id for lease in message.leases] == [second.id]
    assert naps == [child.GIVE_BACK_EVERY]
    _sleep(0.2)
    assert len(naps) <= 2  # the batch given back: asleep again after one more look


def test_a_batch_of_one_leaves_the_give_back_thread_asleep() -> None:
    app = App("give-back", backend="memory://")
    orders, _ = Pipe(duplex=False)
    _, reports = Pipe(duplex=False)
    conf = child.ChildConfig("tests:app", "memory://", "w", ("default",), None, max_tasks=1)
    runner = child._Runner(app, conf, child.Link(orders, reports), Slot(bytearray(SLOT_BYTES)))
    runner._run_one = lambda record: None  # type: ignore[method-assign]
    runner._run_batch([job(app.backend)])
    assert not runner._behind.is_set()
    runner._run_batch([job(app.backend), job(app.backend)])
    assert runner._behind.is_set()
