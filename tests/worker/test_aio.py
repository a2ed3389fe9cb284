"""``app.aio``: enqueue and wait from an event loop without blocking it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import App, JobFailed, State
from conveyor.control.jobs import cancel_job
from conveyor.errors import JobTimeout
from conveyor.worker import Worker

Start = Callable[..., tuple[Worker, threading.Thread]]


def test_enqueue_and_wait_from_a_loop_that_keeps_running(
    worker_app: App, start_worker: Start, ledger: Path
) -> None:
    start_worker()
    add = worker_app.tasks["t.add"]

    async def scenario() -> tuple[list[int], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # starves if anything blocks the loop
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        tick_task = asyncio.create_task(ticker())
        first = await add.adelay(1, 2)
        second = await add.aapply_async((3, 4), priority="high")
        more = await worker_app.aio.enqueue_many([add.s(5, 6)])
        slow = await worker_app.aio.send_task("t.ledger", [str(ledger), 0.3])
        results = [await worker_app.aio.result(j.id, timeout=20) for j in [first, second, *more]]
        await worker_app.aio.result(slow.id, timeout=20)
        stop.set()
        await tick_task
        return results, ticks

    results, ticks = asyncio.run(scenario())
    assert results == [3, 7, 11]
    assert ticks >= 20  # the loop ran on while the 0.3 s job was awaited
    worker_app.aio.close()


def test_result_raises_as_job_get_does(worker_app: App, start_worker: Start) -> None:
    start_worker()

    async def scenario() -> None:
        failed = await worker_app.aio.send_task("t.fail", ["boom"])
        with pytest.raises(JobFailed, match="boom"):
            await worker_app.aio.result(failed.id, timeout=20)
        assert await worker_app.aio.result(failed.id, propagate=False) is None

    asyncio.run(scenario())


def test_control_functions_run_off_the_loop(worker_app: App) -> None:
    async def scenario() -> None:
        job = await worker_app.aio.send_task("t.add", [1, 1], countdown=60)
        with pytest.raises(JobTimeout):
            await worker_app.aio.result(job.id, timeout=0.05)
        await worker_app.aio.call(cancel_job, worker_app, job.id)
        assert (await worker_app.aio.record(job.id)).state is State.REVOKED

    asyncio.run(scenario())
