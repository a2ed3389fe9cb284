"""Dramatiq with its Redis broker, as its docs set it up."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from . import stamps

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
dramatiq.set_broker(broker)
stamp = dramatiq.actor(stamps.stamp, actor_name="stamp", max_retries=0)
nap = dramatiq.actor(stamps.nap, actor_name="nap", max_retries=0)
WORKER = ["dramatiq", "benchmarks.peers.dramatiq_app"]


def send(sent: float = 0.0) -> None:
    stamp.send(sent)


def send_bulk(n: int) -> None:  # no bulk enqueue in Dramatiq: a group sends each message
    for i in range(0, n, 1000):
        dramatiq.group(stamp.message() for _ in range(min(1000, n - i))).run()


def send_nap(seconds: float, n: int) -> None:
    for _ in range(n):
        nap.send(seconds)


def worker_argv(processes: int) -> list[str]:
    return [*WORKER, "-p", str(processes)]  # threads per process: its default (8)


def sleep_argv(concurrency: int) -> list[str]:
    return [*WORKER, "-p", "1", "-t", str(concurrency)]
