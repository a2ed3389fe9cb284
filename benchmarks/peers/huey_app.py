"""Huey with Redis storage, as its docs set it up (results kept: its default)."""

from __future__ import annotations

import os

from huey import RedisHuey

from . import stamps

huey = RedisHuey("bench", url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
stamp = huey.task(name="stamp")(stamps.stamp)
nap = huey.task(name="nap")(stamps.nap)
WORKER = ["huey_consumer", "benchmarks.peers.huey_app.huey", "-q"]


def send(sent: float = 0.0) -> None:
    stamp(sent)


send_bulk = None  # Huey has no bulk enqueue


def send_nap(seconds: float, n: int) -> None:
    for _ in range(n):
        nap(seconds)


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "-w", str(processes), "-k", "process"]


def sleep_argv(concurrency: int) -> list[str]:
    return [*WORKER, "-w", str(concurrency), "-k", "thread"]
