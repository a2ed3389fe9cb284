"""The async face: ``app.aio``, for code running on an event loop (ASGI apps, FastAPI).

Every backend driver Conveyor uses is synchronous, and a blocking call on the event
loop stalls every request the loop serves. ``app.aio`` is the one way async code calls
Conveyor: each call runs on a thread pool of the app's own (``aio_threads`` threads,
default 16), so the loop never waits on the store, and the pool bounds how many calls
reach the backend at once. Waiting for a result polls with ``asyncio.sleep``, so it
holds no thread while it waits.

Where the backend's driver has an async client (Redis: ``Backend.async_reads``), a job's
record is read on the loop itself between ``await app.aio.open()`` and ``await
app.aio.aclose()`` on that loop (the REST API's lifespan calls both): no hand-off to a
thread and back, whose two wake-ups are most of a status read's cost. The record is the
one ``App.record`` returns, decoded by the same code; outside those calls, or on another
loop, it is read on the threads as every other call is.

    job = await app.aio.send_task("media.convert", ["/in.mp4"], queue="video")
    job = await convert.adelay("/in.mp4", "webm")  # the same, from a task
    record = await app.aio.record(job.id)
    result = await app.aio.result(job.id, timeout=30)
    await app.aio.call(cancel_job, app, job.id, terminate=True)  # any control function
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .job import ResultWait

if TYPE_CHECKING:
    from .app import App
    from .backends import AsyncReads
    from .job import Job
    from .records import JobRecord
    from .task import Signature

P = ParamSpec("P")
R = TypeVar("R")


class AsyncApp:
    """Async versions of an app's calls; reach it as ``app.aio``."""

    def __init__(self, app: App, threads: int) -> None:
        self.app = app
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # per event loop: the backend's async reads and how many opened them there
        self._reads: dict[asyncio.AbstractEventLoop, tuple[AsyncReads, int]] = {}

    async def open(self) -> None:
        """Read records on the running loop until ``aclose`` (where the backend can)."""
        loop = asyncio.get_running_loop()
        if loop in self._reads:
            reads, count = self._reads[loop]
            self._reads[loop] = (reads, count + 1)
        elif (made := self.app.backend.async_reads()) is not None:
            self._reads[loop] = (made, 1)

    async def aclose(self) -> None:
        """Undo one ``open`` on the running loop: the last closes its connections."""
        loop = asyncio.get_running_loop()
        if loop not in self._reads:
            return
        reads, count = self._reads[loop]
        if count > 1:
            self._reads[loop] = (reads, count - 1)
        else:
            del self._reads[loop]
            await reads.close()

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run any blocking Conveyor call (a control function, a backend read) off the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), functools.partial(fn, *args, **kwargs))

    async def send_task(
        self,
        name: str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """``App.send_task`` without blocking the loop."""
        return await self.call(self.app.send_task, name, args, kwargs, **options)

    async def enqueue_many(self, signatures: Iterable[Signature]) -> list[Job]:
        """``App.enqueue_many`` without blocking the loop."""
        return await self.call(self.app.enqueue_many, list(signatures))

    async def record(self, job_id: str) -> JobRecord:
        """The stored record of a job (``App.record``); raises ``JobNotFound`` for an unknown id."""
        opened = self._reads.get(asyncio.get_running_loop())
        if opened is None or opened[0].backend is not self.app.backend:
            return await self.call(
                self.app.record, job_id
            )  # no async reads here (or a swapped backend)
        found = await opened[0].get(job_id)
        if found is None:
            raise await self.call(self.app.not_found, job_id)
        return found

    async def kv_get(self, key: str, default: Any = None) -> Any:
        """``Backend.kv_get``, on the loop where the backend reads there (as ``record``)."""
        opened = self._reads.get(asyncio.get_running_loop())
        if opened is None or opened[0].backend is not self.app.backend:
            return await self.call(self.app.backend.kv_get, key, default)
        return await opened[0].kv_get(key, default)

    async def result(
        self, job_id: str, timeout: float | None = None, *, propagate: bool = True
    ) -> Any:
        """Wait for the job to finish and return its result, as ``Job.get`` does, sleeping
        on the loop between looks (no thread is held while waiting)."""
        wait = ResultWait(timeout, first_pause=0.005)
        while True:
            done, value = wait.look(await self.record(job_id), propagate)
            if done:
                return value
            await asyncio.sleep(wait.next_pause())

    def close(self) -> None:
        """Stop the threads (waiting for calls in flight); a later call starts them again."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self._threads, thread_name_prefix=f"conveyor-aio-{self.app.name}"
                    )
        return self._executor
