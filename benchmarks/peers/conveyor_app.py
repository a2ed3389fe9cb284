"""Conveyor as a contender in the Redis comparison (benchmarks.compare_redis)."""

from __future__ import annotations

import os

from conveyor import App
from conveyor.task import Signature

from . import stamps

app = App("bench", backend=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
stamp = app.task(name="stamp")(stamps.stamp)
nap = app.task(name="nap")(stamps.nap)
WORKER = ["conveyor", "-A", "benchmarks.peers.conveyor_app:app", "worker", "-l", "warning"]


def send(sent: float = 0.0) -> None:
    stamp.delay(sent)


def send_bulk(n: int) -> None:
    for i in range(0, n, 1000):
        app.enqueue_many([Signature("stamp") for _ in range(min(1000, n - i))])


def send_nap(seconds: float, n: int) -> None:
    app.enqueue_many([Signature("nap", (seconds,)) for _ in range(n)])


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "-P", "process", "-c", str(processes)]


def sleep_argv(concurrency: int) -> list[str]:
    return [*WORKER, "-P", "thread", "-c", str(concurrency)]
