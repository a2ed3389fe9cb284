"""Pausing, resuming and purging queues, and their statistics."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..records import Run
from ..states import WAITING, State
from .liveness import alive

if TYPE_CHECKING:
    from ..app import App

#: Windows over which throughput and runtimes are reported, in seconds.
WINDOWS = {"1m": 60, "5m": 300, "15m": 900}


@dataclass
class Window:
    finished: int
    failed: int
    per_minute: float
    runtime_p50: float | None
    runtime_p95: float | None
    runtime_p99: float | None


@dataclass
class QueueStats:
    name: str
    paused: bool
    #: Jobs per state (every state present in the queue).
    depth: dict[str, int]
    waiting: int
    running: int
    oldest_waiting_age: float | None
    #: Names of live workers consuming the queue (heartbeats on time: see control.liveness).
    consumers: list[str]
    windows: dict[str, Window] = field(default_factory=dict)


def pause_queue(app: App, queue: str) -> None:
    """Stop every worker from claiming from ``queue`` (persisted; running jobs go on)."""
    app.backend.pause_queue(queue)


def resume_queue(app: App, queue: str) -> None:
    app.backend.resume_queue(queue)


def purge_queue(app: App, queue: str) -> int:
    """Revoke every waiting job of ``queue``; running jobs are left alone."""
    return app.backend.purge(queue)


def queue_stats(app: App) -> list[QueueStats]:
    """Every queue the app declares, holds jobs in, is paused, or has a consumer for."""
    backend = app.backend
    now = backend.now()
    counts = backend.counts()
    paused = backend.paused_queues()
    oldest = backend.oldest_waiting()
    live = alive(backend.workers(), now)  # a worker presumed dead consumes nothing
    runs = backend.recent_runs(now - max(WINDOWS.values()))
    names = (
        set(app.declared_queues())
        | {q for q, _ in counts}
        | paused
        | {q for w in live for q in w.queues}
    )
    stats = []
    for name in sorted(names):
        depth = {state.value: n for (queue, state), n in counts.items() if queue == name and n}
        stats.append(
            QueueStats(
                name=name,
                paused=name in paused,
                depth=depth,
                waiting=sum(n for s, n in depth.items() if State(s) in WAITING),
                running=depth.get(State.STARTED.value, 0),
                oldest_waiting_age=None if name not in oldest else max(0.0, now - oldest[name]),
                consumers=sorted(w.name for w in live if name in w.queues),
                windows={
                    label: _window(
                        [r for r in runs if r.queue == name and r.finished_at >= now - size], size
                    )
                    for label, size in WINDOWS.items()
                },
            )
        )
    return stats


def _window(runs: list[Run], seconds: int) -> Window:
    times = sorted(r.finished_at - r.started_at for r in runs)
    cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) >= 2 else times * 99
    return Window(
        finished=len(runs),
        failed=sum(r.state == State.FAILURE.value for r in runs),
        per_minute=len(runs) * 60 / seconds,
        runtime_p50=cuts[49] if cuts else None,
        runtime_p95=cuts[94] if cuts else None,
        runtime_p99=cuts[98] if cuts else None,
    )
