"""Throughput over time: finished and failed jobs per interval, for charts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..records import Run
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
    app: App,
    *,
    window: float = 3600,
    step: float = 60,
    queue: str | None = None,
    runs: list[Run] | None = None,
) -> list[Bucket]:
    """Jobs that finished after running in the last ``window`` seconds, counted per
    ``step`` seconds, oldest first; ``failed`` counts those that ended FAILURE.

    ``runs``: the backend's ``recent_runs`` since at least ``window`` ago, when the
    caller has read them already (a page drawing a chart per queue reads them once)."""
    if not 0 < step <= window:
        raise ValueError(f"step must be in (0, window], not {step}")
    now = app.backend.now()
    count = int(window // step)
    first = now - count * step
    buckets = [Bucket(first + i * step, 0, 0) for i in range(count)]
    read = app.backend.recent_runs(first) if runs is None else runs
    failure = State.FAILURE.value
    last = count - 1
    # One comprehension per count, not a loop of attribute updates: a large store's
    # page counts thousands of runs per chart.
    mine = [r for r in read if r.finished_at >= first and (queue is None or r.queue == queue)]
    for i, n in Counter([min(int((r.finished_at - first) // step), last) for r in mine]).items():
        buckets[i].finished = n
    failed = [r.finished_at for r in mine if r.state == failure]
    for i, n in Counter([min(int((at - first) // step), last) for at in failed]).items():
        buckets[i].failed = n
    return buckets
