"""Throughput over time: finished and failed jobs per interval, for charts; and the
counts and run times of a recent window. Both read the backend's per-minute rollups
(``Backend.run_rollup``, ``backends/rollup.py``), never the runs themselves: their cost
is a few rows a minute, whatever the throughput."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..backends.rollup import Minute, minute_of

if TYPE_CHECKING:
    from ..app import App

#: What ``Backend.run_rollup`` returns: {(queue, minute start): Minute}.
Rollup = dict[tuple[str, int], Minute]


@dataclass
class Bucket:
    #: Start of the interval (the backend's clock, POSIX seconds; a minute's start).
    start: float
    finished: int
    failed: int


@dataclass
class Recent:
    """A window's finished and failed runs (estimates: see ``recent``) and the run-time
    histogram of the minutes it overlaps."""

    finished: int
    failed: int
    runtimes: dict[int, int]


def throughput(
    app: App,
    *,
    window: float = 3600,
    step: float = 60,
    queue: str | None = None,
    rollup: Rollup | None = None,
) -> list[Bucket]:
    """Jobs that finished after running in the last ``window`` seconds, counted per
    ``step`` seconds (whole minutes), oldest first; ``failed`` counts those that ended
    FAILURE. Intervals are aligned on minutes: the last one is the current minute so far.

    ``rollup``: the backend's ``run_rollup`` since at least ``window`` ago, when the
    caller has read it already (a page drawing a chart per queue reads it once)."""
    if not 0 < step <= window or step % 60:
        raise ValueError(f"step must be whole minutes in (0, window], not {step}")
    count = int(window // step)
    first = minute_of(app.backend.now()) + 60 - count * int(step)
    buckets = [Bucket(first + i * step, 0, 0) for i in range(count)]
    read = app.backend.run_rollup(first) if rollup is None else rollup
    for (name, minute), cell in read.items():
        if minute >= first and (queue is None or name == queue):
            bucket = buckets[int((minute - first) // step)]
            bucket.finished += cell.finished
            bucket.failed += cell.failed
    return buckets


def by_queue(rollup: Rollup) -> dict[str, Rollup]:
    """A rollup split per queue, in one pass (a page reads each queue's part several times)."""
    found: dict[str, Rollup] = {}
    for key, cell in rollup.items():
        found.setdefault(key[0], {})[key] = cell
    return found


def recent(rollup: Rollup, now: float, seconds: float, queue: str | None = None) -> Recent:
    """The runs of the last ``seconds`` (of ``queue``, else every queue's) from a
    rollup read since at least then. The minutes wholly inside the window count whole;
    the oldest, which straddles its start, counts in proportion to its part inside (the
    runs are taken as spread evenly over it): an estimate within that one minute's runs.
    Run times are those of every minute the window overlaps."""
    start = now - seconds
    oldest = minute_of(start)
    finished = failed = 0.0
    runtimes: dict[int, int] = {}
    for (name, minute), cell in rollup.items():
        if minute < oldest or (queue is not None and name != queue):
            continue
        share = min(1.0, (minute + 60 - start) / 60) if minute == oldest else 1.0
        finished += cell.finished * share
        failed += cell.failed * share
        for bucket, n in cell.runtimes.items():
            runtimes[bucket] = runtimes.get(bucket, 0) + n
    return Recent(round(finished), round(failed), runtimes)
