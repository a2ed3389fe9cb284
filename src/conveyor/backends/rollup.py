"""Per-minute rollups of finished runs: what charts and queue windows read instead of
the runs themselves, so their cost does not grow with the hour's throughput.

Each backend keeps, per (queue, minute, runtime bucket), how many deliveries ended the
job there (SUCCESS, FAILURE or REVOKED, acknowledged by the worker or ended by the
rescue of a lost worker) and how many of those ended FAILURE, written in the same
atomic step as the outcomes: one increment per (queue, minute, bucket) per batch of
acknowledgements, not per job. An attempt that ends RETRY is not counted: the job has
not finished (its last attempt is). Rollups are kept ``ROLLUP_KEPT`` seconds.

Runtimes (the delivery's finish minus its start) go into log-spaced buckets, ``PER_DOUBLING``
per doubling from ``FLOOR`` seconds: a percentile read from them is the geometric middle
of its bucket, within ``RESOLUTION`` (9%) of the run time it stands for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

#: Rollups older than this are pruned (seconds): a day, more than the longest window
#: (the charts' hour).
ROLLUP_KEPT = 86_400
#: Run times below this (seconds) share bucket 0.
FLOOR = 1e-4
#: Buckets per doubling of the run time.
PER_DOUBLING = 4
#: The last bucket (about 10^8 s: every real run time has a bucket of its own).
TOP = 160
#: How far a percentile read from the buckets may be from the run time it stands for:
#: half a bucket, as a ratio (2^(1/8) - 1).
RESOLUTION = 2 ** (1 / (2 * PER_DOUBLING)) - 1

#: (queue, minute start in seconds, bucket) -> [finished, failed].
Tally = dict[tuple[str, int, int], list[int]]


class Minute(NamedTuple):
    """One queue's finished runs in one minute."""

    finished: int
    failed: int
    #: Runs per run-time bucket (``bucket_of``).
    runtimes: dict[int, int]


def bucket_of(seconds: float) -> int:
    """The bucket of a run time (the same arithmetic as the Redis scripts' ``rollup.lua``)."""
    if seconds < FLOOR:
        return 0
    return min(TOP, 1 + math.floor(PER_DOUBLING * math.log2(seconds / FLOOR)))


def middle(bucket: int) -> float:
    """The run time a bucket stands for: the geometric middle of its bounds (0 for 0)."""
    if bucket <= 0:
        return 0.0
    return float(FLOOR * 2 ** ((bucket - 0.5) / PER_DOUBLING))


def minute_of(at: float) -> int:
    """The start (seconds) of the minute holding ``at``."""
    return int(at // 60) * 60


def tally(ended: Iterable[tuple[str, str, float | None]], now: float) -> Tally:
    """The increments for deliveries that ended the job at ``now``: (queue, final state,
    started_at) each; a delivery without a start counts as a run of no time."""
    minute = minute_of(now)
    found: Tally = {}
    for queue, state, started_at in ended:
        ran = 0.0 if started_at is None else max(0.0, now - started_at)
        cell = found.setdefault((queue, minute, bucket_of(ran)), [0, 0])
        cell[0] += 1
        cell[1] += state == "FAILURE"
    return found


def minutes(rows: Iterable[tuple[str, int, int, int, int]]) -> dict[tuple[str, int], Minute]:
    """Rows of (queue, minute, bucket, finished, failed), summed per (queue, minute)."""
    found: dict[tuple[str, int], Minute] = {}
    for queue, minute, bucket, finished, failed in rows:
        if not finished:
            continue
        key = (queue, int(minute))
        cell = found.get(key)
        if cell is None:
            cell = found[key] = Minute(0, 0, {})
        runtimes = cell.runtimes
        runtimes[int(bucket)] = runtimes.get(int(bucket), 0) + int(finished)
        found[key] = Minute(cell.finished + int(finished), cell.failed + int(failed), runtimes)
    return found


def percentile(runtimes: Mapping[int, int], p: float) -> float | None:
    """The ``p``th percentile (nearest rank) of the run times in a histogram, as its
    bucket's middle (within ``RESOLUTION``); None for no runs."""
    total = sum(runtimes.values())
    if not total:
        return None
    rank = max(1, math.ceil(total * p / 100))
    seen = 0
    for bucket in sorted(runtimes):
        seen += runtimes[bucket]
        if seen >= rank:
            return middle(bucket)
    return middle(max(runtimes))  # pragma: no cover - rank <= total
