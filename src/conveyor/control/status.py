"""The worker registry, overall statistics and the health report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConveyorError
from ..records import WorkerInfo
from .history import Rollup, recent
from .queues import live_workers, queue_stats
from .util import hide_password

if TYPE_CHECKING:
    from ..app import App


def workers(app: App) -> list[WorkerInfo]:
    """Registered workers, with their queues, pool, concurrency, running jobs and last
    heartbeat: the live ones and, for a minute, those whose heartbeats stopped
    (``control.liveness`` tells them apart)."""
    return sorted(app.backend.workers(), key=lambda w: w.name)


@dataclass
class Overview:
    by_state: dict[str, int]
    total: int
    queues: int
    #: Live workers (heartbeats on time).
    workers: int
    finished_last_minute: int


def overview(
    app: App, rollup: Rollup | None = None, live: list[WorkerInfo] | None = None
) -> Overview:
    """Totals across queues. ``rollup``: the backend's ``run_rollup`` since at least a
    minute ago, and ``live``: ``live_workers``, when the caller has read them already.
    ``finished_last_minute`` is an estimate (``history.recent``)."""
    counts = app.backend.counts()
    by_state: dict[str, int] = {}
    for (_, state), n in counts.items():
        by_state[state.value] = by_state.get(state.value, 0) + n
    now = app.backend.now()
    return Overview(
        by_state=by_state,
        total=sum(by_state.values()),
        queues=len({q for q, _ in counts}),
        workers=len(live_workers(app) if live is None else live),
        finished_last_minute=recent(
            app.backend.run_rollup(now - 60) if rollup is None else rollup, now, 60
        ).finished,
    )


@dataclass
class Health:
    ok: bool
    backend: dict[str, Any]
    workers_alive: int
    #: Queues holding waiting jobs, and whether they drain (a live consumer, not paused).
    queues: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Readiness:
    reachable: bool
    #: How long the one read took (ms); None when the backend did not answer.
    latency_ms: float | None
    workers_alive: int
    error: str | None = None


def readiness(app: App) -> Readiness:
    """Whether the backend answers, in one cheap read (the worker registry), whatever the
    number of jobs: for a probe asked every few seconds. ``health`` and ``diagnose``
    count jobs and look at every queue."""
    started = time.perf_counter()
    try:
        live = live_workers(app)
    except (ConveyorError, OSError) as exc:
        return Readiness(False, None, 0, str(exc))
    latency = round((time.perf_counter() - started) * 1000, 2)
    return Readiness(True, latency, len(live))


def health(app: App) -> Health:
    """Is the backend reachable (and how fast), are workers alive, do queues drain?"""
    url = hide_password(app.conf.backend_url)
    started = time.perf_counter()
    try:
        app.backend.counts()
    except (ConveyorError, OSError) as exc:
        return Health(
            False, {"url": url, "reachable": False, "latency_ms": None, "error": str(exc)}, 0
        )
    latency = (time.perf_counter() - started) * 1000
    queues = [
        {"name": q.name, "waiting": q.waiting, "consumers": len(q.consumers), "paused": q.paused,
         "draining": bool(q.consumers) and not q.paused}
        for q in queue_stats(app) if q.waiting
    ]  # fmt: skip
    ok = all(q["draining"] or q["paused"] for q in queues)
    return Health(
        ok,
        {"url": url, "reachable": True, "latency_ms": round(latency, 2), "error": None},
        len(live_workers(app)),
        queues,
    )
