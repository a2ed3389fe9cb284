"""Pools run jobs: ``process`` (default), ``thread``, ``async`` and ``solo``.

What each pool can stop, and how, is in docs/worker.md ("What each pool can stop"):
in short, the process pool kills the child; the thread and solo pools raise the
exception inside the job's thread (not while it is inside one long C call); the async
pool cancels the coroutine.
"""

from __future__ import annotations

import os
import queue
from typing import TYPE_CHECKING, Any

from ...errors import ConfigurationError
from .base import Drained, Dropped, Held, Lost, Orphaned, Pool, Report, Stored, Unstarted

if TYPE_CHECKING:
    from ...app import App

POOLS = ("process", "thread", "async", "solo")

__all__ = [
    "POOLS", "Drained", "Dropped", "Held", "Lost", "Orphaned", "Pool", "Report", "Stored",
    "Unstarted",
    "default_concurrency", "make_pool",
]  # fmt: skip


def default_concurrency(kind: str) -> int:
    return {"process": os.cpu_count() or 1, "thread": 8, "async": 100, "solo": 1}[kind]


def make_pool(
    kind: str, app: App, concurrency: int, results: queue.SimpleQueue[Report], **options: Any
) -> Pool:
    if kind == "process":
        from .process import ProcessPool

        return ProcessPool(app, concurrency, results, **options)
    if kind in {"thread", "solo"}:
        from .threads import SoloPool, ThreadPool

        return (SoloPool if kind == "solo" else ThreadPool)(app, concurrency, results)
    if kind == "async":
        from .aio import AsyncPool

        return AsyncPool(app, concurrency, results)
    raise ConfigurationError(f"unknown pool {kind!r}; choose one of {', '.join(POOLS)}")
