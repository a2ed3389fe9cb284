"""Taskiq with taskiq-redis's ListQueueBroker (the broker of its README), no result
backend. Tasks are async, as Taskiq expects."""

from __future__ import annotations

import asyncio
import os
import time

from taskiq_redis import ListQueueBroker

from . import stamps
from .aio import Loop

broker = ListQueueBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
WORKER = ["taskiq", "worker", "benchmarks.peers.taskiq_app:broker"]


@broker.task(task_name="stamp")
async def stamp(sent: float = 0.0) -> None:
    stamps.stamp(sent)


@broker.task(task_name="nap")
async def nap(seconds: float) -> None:
    started = time.time()
    await asyncio.sleep(seconds)
    stamps.stamp(started)


_run = Loop(broker.startup).run


def send(sent: float = 0.0) -> None:
    _run(stamp.kiq(sent))


async def _many(n: int) -> None:  # no bulk API: concurrent sends, 1000 at a time
    for i in range(0, n, 1000):
        await asyncio.gather(*(stamp.kiq() for _ in range(min(1000, n - i))))


def send_bulk(n: int) -> None:
    _run(_many(n))


def send_nap(seconds: float, n: int) -> None:
    async def naps() -> None:
        for _ in range(n):
            await nap.kiq(seconds)

    _run(naps())


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "--workers", str(processes)]


def sleep_argv(concurrency: int) -> list[str]:
    return [*WORKER, "--workers", "1", "--max-async-tasks", str(concurrency)]
