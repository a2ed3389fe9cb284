"""Which registered workers are alive.

A worker renews its registry entry with every heartbeat. The backend keeps an entry for
``WORKER_TTL`` (a minute) after the last one, long enough to name a worker that died; a
worker whose heartbeat is a few of its own intervals late is presumed dead (killed,
lost its machine, or stalled) at once: it no longer counts as a consumer of its queues,
and doctor names the jobs it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import WorkerInfo

#: A worker silent for more than this many of its heartbeat intervals is presumed dead.
OVERDUE_BEATS = 3
#: ... but never sooner than this (seconds): a beat can be late by a busy machine alone,
#: and a worker with a very short interval should not flap between alive and dead.
MIN_SILENCE = 1.0


@dataclass(frozen=True)
class Liveness:
    alive: bool
    #: Seconds since the worker's last heartbeat (the backend's clock).
    silent_for: float
    #: Silence longer than this presumes it dead: OVERDUE_BEATS of its heartbeat intervals.
    dead_after: float


def liveness(worker: WorkerInfo, now: float) -> Liveness:
    silent_for = max(0.0, now - worker.last_seen)
    dead_after = max(OVERDUE_BEATS * worker.heartbeat_interval, MIN_SILENCE)
    return Liveness(silent_for <= dead_after, silent_for, dead_after)


def alive(workers: list[WorkerInfo], now: float) -> list[WorkerInfo]:
    """The workers whose heartbeats are on time: the ones that consume their queues."""
    return [w for w in workers if liveness(w, now).alive]
