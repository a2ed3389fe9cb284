"""Which registered workers are alive, and which scheduler leads an app.

A worker renews its registry entry with every heartbeat. The backend keeps an entry for
``WORKER_TTL`` (a minute) after the last one, long enough to name a worker that died; a
worker whose heartbeat is a few of its own intervals late is presumed dead (killed,
lost its machine, or stalled) at once: it no longer counts as a consumer of its queues,
and doctor names the jobs it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..records import WorkerInfo
from ..scheduler.runner import leader_lock
from .util import short

if TYPE_CHECKING:
    from ..app import App

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


@dataclass
class WorkerLabel:
    """How a job's worker is shown: by name (host and pid on hover) and, unless it
    runs, what became of it."""

    name: str
    #: "host · pid", or why nothing more is known.
    detail: str
    #: "" while it runs; "stopped", "presumed dead", or "gone" (its entry was deleted,
    #: a day after its last heartbeat).
    state: str


def worker_labels(
    app: App, ids: list[str], registered: Sequence[WorkerInfo] = ()
) -> dict[str, WorkerLabel]:
    """Labels for the workers that ran jobs, by id: running, stopped or dead ones alike
    (``Backend.worker_directory`` keeps their entries for a day). ``registered``: the
    registry's entries the caller read already; the directory is read for the others."""
    found = {w.id: w for w in registered}
    missing = [worker_id for worker_id in ids if worker_id not in found]
    if missing:
        found.update(app.backend.worker_directory(missing))
    now = app.backend.now()
    labels = {}
    for worker_id in ids:
        w = found.get(worker_id)
        if w is None:
            labels[worker_id] = WorkerLabel(
                short(worker_id), f"worker {worker_id}: no longer known", "gone"
            )
            continue
        state = ("stopped" if w.stopped_at is not None
                 else "" if liveness(w, now).alive else "presumed dead")  # fmt: skip
        labels[worker_id] = WorkerLabel(w.name, f"host {w.host} · pid {w.pid}", state)
    return labels


@dataclass(frozen=True)
class Leader:
    """The scheduler leading an app: its id (``conveyor scheduler`` logs it as it starts
    and as it takes the lead) and until when its lock holds unless renewed (the leader
    renews it at every step, about once a second; ``--lock-ttl`` ahead)."""

    scheduler: str
    until: float


def scheduler_leader(app: App, of: str | None = None) -> Leader | None:
    """The scheduler leading the app named ``of`` (``app``'s own by default), or None when
    none does: no scheduler of that app runs, or its leader stopped renewing the lock
    (stopped, frozen, or cut off from the store) for longer than the lock's TTL. One read
    of the app's leader lock (``Backend.lock_holder``), for doctor and ``/metrics`` alike."""
    held = app.backend.lock_holder(leader_lock(app.name if of is None else of))
    return None if held is None else Leader(*held)
