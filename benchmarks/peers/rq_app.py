"""RQ, as its docs set it up: the default worker (a fork per job), a worker pool."""

from __future__ import annotations

import os

from redis import Redis
from rq import Queue

from . import stamps

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
queue = Queue("default", connection=Redis.from_url(URL))
WORKER = ["rq", "worker-pool", "-u", URL, "-q", "default"]


def send(sent: float = 0.0) -> None:
    queue.enqueue(stamps.stamp, sent)


def send_bulk(n: int) -> None:
    for i in range(0, n, 1000):
        queue.enqueue_many([Queue.prepare_data(stamps.stamp) for _ in range(min(1000, n - i))])


def send_nap(seconds: float, n: int) -> None:
    queue.enqueue_many([Queue.prepare_data(stamps.nap, (seconds,)) for _ in range(n)])


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "-n", str(processes)]


def sleep_argv(concurrency: int) -> list[str]:
    return [*WORKER, "-n", str(concurrency)]
