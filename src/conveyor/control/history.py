"""Throughput over time: finished and failed jobs per interval, for charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..states import State

if TYPE_CHECKING:
    from ..app import App


@dataclass
class Bucket:
    #: Start of the interval (the backend's clock, POSIX seconds).
    start: float
    finished: int
    failed: int


def throughput(
    app: App, *, window: float = 3600, step: float = 60, queue: str | None = None
) -> list[Bucket]:
    """Jobs that finished after running in the last ``window`` seconds, counted per
    ``step`` seconds, oldest first; ``failed`` counts those that ended FAILURE."""
    if not 0 < step <= window:
        raise ValueError(f"step must be in (0, window], not {step}")
    now = app.backend.now()
    count = int(window // step)
    first = now - count * step
    buckets = [Bucket(first + i * step, 0, 0) for i in range(count)]
    for run in app.backend.recent_runs(first):
        if queue is not None and run.queue != queue:
            continue
        i = min(int((run.finished_at - first) // step), count - 1)
        if i < 0:
            continue
        buckets[i].finished += 1
        buckets[i].failed += run.state == State.FAILURE.value
    return buckets
