"""SAQ with Redis, as its docs set it up: async tasks, a settings dict for `saq`."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from saq import Queue

from . import stamps
from .aio import Loop

queue = Queue.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
WORKER = ["saq", "benchmarks.peers.saq_app.settings", "--quiet"]


async def stamp(ctx: Any, *, sent: float = 0.0) -> None:
    stamps.stamp(sent)


async def nap(ctx: Any, *, seconds: float) -> None:
    started = time.time()
    await asyncio.sleep(seconds)
    stamps.stamp(started)


settings = {
    "queue": queue,
    "functions": [stamp, nap],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "10")),  # its default: 10
}


_run = Loop(queue.connect).run


def send(sent: float = 0.0) -> None:
    _run(queue.enqueue("stamp", sent=sent))


async def _many(n: int) -> None:  # no bulk API: concurrent enqueues, 1000 at a time
    for i in range(0, n, 1000):
        await asyncio.gather(*(queue.enqueue("stamp") for _ in range(min(1000, n - i))))


def send_bulk(n: int) -> None:
    _run(_many(n))


def send_nap(seconds: float, n: int) -> None:
    async def naps() -> None:
        for _ in range(n):
            await queue.enqueue("nap", seconds=seconds)

    _run(naps())


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "--workers", str(processes)]


def sleep_argv(concurrency: int) -> list[str]:
    os.environ["BENCH_CONCURRENCY"] = str(concurrency)  # read by the worker's import
    return [*WORKER, "--workers", "1"]
