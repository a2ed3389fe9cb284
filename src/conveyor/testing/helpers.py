"""The helpers ``conveyor.testing`` offers; see its docstring for how they fit together."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ..backends import Backend, from_url
from ..worker import Worker

if TYPE_CHECKING:
    from ..app import App

T = TypeVar("T")


class FakeClock:
    """A clock tests move by hand, so delays, leases and retries need no sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def use_backend(
    app: App, url: str | Backend = "memory://", *, clock: Callable[[], float] | None = None
) -> Iterator[Backend]:
    """Bind ``app`` to a fresh backend (default: in memory) inside the ``with`` block."""
    backend = url if isinstance(url, Backend) else from_url(url, clock=clock)
    previous_url = app.conf.backend_url
    previous = app.use_backend(backend)
    try:
        yield backend
    finally:
        app.use_backend(previous)
        app.conf.backend_url = previous_url
        if backend is not url:
            backend.close()


def drain(
    app: App, queues: list[str] | None = None, *, pool: str = "thread", concurrency: int = 2
) -> dict[str, int]:
    """Run a burst worker in this process until its queues are drained; returns its counts
    (``{"SUCCESS": 3, "FAILURE": 1, ...}``). ``pool="process"`` needs an app importable by
    path (``app.main``); the thread pool runs any app."""
    worker = Worker(app, queues=queues, pool=pool, concurrency=concurrency, burst=True)
    worker.run()
    return {state: n for state, n in worker.counts.items() if n}


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; raise
    ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
