"""Celery with its Redis broker, as its docs set it up; BENCH_CELERY_RESULTS=1 adds the
Redis result backend (results stored, as most Celery deployments do)."""

from __future__ import annotations

import os

from celery import Celery, group

from . import stamps

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
RESULTS = os.environ.get("BENCH_CELERY_RESULTS") == "1"
app = Celery("bench", broker=URL, backend=URL if RESULTS else None)
app.conf.update(task_ignore_result=not RESULTS, broker_connection_retry_on_startup=True)
stamp = app.task(name="stamp")(stamps.stamp)
nap = app.task(name="nap")(stamps.nap)
WORKER = ["celery", "-A", "benchmarks.peers.celery_app:app", "worker", "-l", "warning"]


def send(sent: float = 0.0) -> None:
    stamp.delay(sent)


def send_bulk(n: int) -> None:  # no bulk publish in Celery: a group sends on one connection
    for i in range(0, n, 1000):
        group(stamp.s() for _ in range(min(1000, n - i))).apply_async()


def send_nap(seconds: float, n: int) -> None:
    group(nap.s(seconds) for _ in range(n)).apply_async()


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "-P", "prefork", "-c", str(processes)]


def sleep_argv(concurrency: int) -> list[str]:
    return [*WORKER, "-P", "threads", "-c", str(concurrency)]
