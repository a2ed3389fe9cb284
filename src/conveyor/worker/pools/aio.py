"""``async`` pool: ``async def`` tasks run as coroutines on one event loop, many at once.

Sync tasks submitted here run in the loop's thread executor so they never block it;
there, time limits and terminate are raised in the task's thread, as in the thread pool.
An ``async def`` task's time limit cancels the coroutine (``CancelledError`` inside the
task, so ``finally`` blocks run) and the record names the limit; terminate cancels it too.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...records import JobRecord, Outcome
from ..execution import await_task, execute, prepare, started
from .base import Pool, Report

if TYPE_CHECKING:
    from ...app import App


class AsyncPool(Pool):
    kind = "async"

    def __init__(self, app: App, concurrency: int, results: queue.SimpleQueue[Report]) -> None:
        super().__init__(app, concurrency, results)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="conveyor-async", daemon=True
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, Callable[[], object]] = {}  # started jobs: how to stop each
        self._waiting: list[JobRecord] = []
        self._lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None

    def start(self) -> None:
        self._thread.start()

    def submit(self, record: JobRecord) -> None:
        with self._lock:
            self._waiting.append(record)
        self._loop.call_soon_threadsafe(self._spawn, record)

    def _spawn(self, record: JobRecord) -> None:
        self._tasks[record.id] = self._loop.create_task(self._run(record))

    async def _run(self, record: JobRecord) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            with self._lock:
                if record not in self._waiting:  # taken back by take_unstarted
                    return
                self._waiting.remove(record)
            try:
                self.results.put(await self._execute(record))
            finally:
                self._tasks.pop(record.id, None)

    async def _execute(self, record: JobRecord) -> Outcome:
        job = prepare(self.app, record)
        if isinstance(job, Outcome):
            return job
        try:
            if not job.task.is_async:  # its thread registers how to stop it (execute)
                run = functools.partial(execute, self.app, record, on_start=self._track)
                return await self._loop.run_in_executor(None, run)
            task = asyncio.current_task()
            assert task is not None
            self._track(record.id, lambda: self._loop.call_soon_threadsafe(task.cancel))
            started(self.app, record)
            return await await_task(self.app, job)
        finally:
            with self._lock:
                self._stops.pop(record.id, None)

    def _track(self, job_id: str, stop: Callable[[], object]) -> None:
        with self._lock:
            self._stops[job_id] = stop

    def terminate(self, job_id: str) -> None:
        # Only a started job is stopped (a cancelled wait for a slot or for the executor
        # would lose its outcome); the next heartbeat asks again for one not started yet.
        with self._lock:
            stop = self._stops.get(job_id)
        if stop is not None:
            stop()

    def running_jobs(self) -> set[str]:
        with self._lock:  # a job leaves _waiting when it starts, and _tasks when it ends
            return set(self._tasks) - {r.id for r in self._waiting}

    def take_unstarted(self) -> list[JobRecord]:
        with self._lock:
            taken, self._waiting = self._waiting, []
        return taken

    def shutdown(self, *, wait: bool) -> None:
        async def drain() -> None:
            pending = list(self._tasks.values())
            if pending and wait:
                await asyncio.gather(*pending, return_exceptions=True)
            for task in pending:
                task.cancel()

        asyncio.run_coroutine_threadsafe(drain(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
