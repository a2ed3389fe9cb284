"""``thread`` and ``solo`` pools: jobs run in threads of the worker process.

Soft and hard time limits and terminate are raised inside the task's thread as
exceptions (see ``worker.limits``): a task running Python code stops within moments and
its ``finally`` blocks run; one long call into C code cannot be interrupted, and the
job's record says so when it ends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...records import JobRecord
from ..execution import execute
from .base import Pool, Report

if TYPE_CHECKING:
    from ...app import App


class ThreadPool(Pool):
    kind = "thread"

    def __init__(self, app: App, concurrency: int, results: queue.SimpleQueue[Report]) -> None:
        super().__init__(app, concurrency, results)
        self._inbox: queue.Queue[JobRecord | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stops: dict[str, Callable[[], object]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.concurrency):
            thread = threading.Thread(
                target=self._run, name=f"conveyor-{self.kind}-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while (record := self._inbox.get()) is not None:
            outcome = execute(self.app, record, on_start=self._track)
            with self._lock:
                self._stops.pop(record.id, None)
            self.results.put(outcome)

    def _track(self, job_id: str, stop: Callable[[], object]) -> None:
        with self._lock:
            self._stops[job_id] = stop

    def submit(self, record: JobRecord) -> None:
        self._inbox.put(record)

    def terminate(self, job_id: str) -> None:
        with self._lock:
            stop = self._stops.get(job_id)
        if stop is not None:  # else not started yet, or ended: the heartbeat asks again
            stop()

    def running_jobs(self) -> set[str]:
        with self._lock:
            return set(self._stops)

    def take_unstarted(self) -> list[JobRecord]:
        taken: list[JobRecord] = []
        while True:
            try:
                record = self._inbox.get_nowait()
            except queue.Empty:
                return taken
            if record is not None:
                taken.append(record)

    def shutdown(self, *, wait: bool) -> None:
        for _ in self._threads:
            self._inbox.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        # Without wait, daemon threads still running die with the process; their leases
        # are released by the worker, so a late outcome is refused.


class SoloPool(ThreadPool):
    """One job at a time, in a single thread: the simplest pool, for debugging."""

    kind = "solo"

    def __init__(self, app: App, concurrency: int, results: queue.SimpleQueue[Report]) -> None:
        super().__init__(app, 1, results)
