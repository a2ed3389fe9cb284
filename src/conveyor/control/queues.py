"""Pausing, resuming and purging queues, and their statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..backends.rollup import percentile
from ..errors import ConveyorError
from ..events import QueuePaused, QueueResumed
from ..names import check_queue_name
from ..records import WorkerInfo
from ..states import WAITING, State
from .history import Rollup, by_queue, recent
from .liveness import alive

if TYPE_CHECKING:
    from ..app import App

#: Windows over which throughput and runtimes are reported, in seconds.
WINDOWS = {"1m": 60, "5m": 300, "15m": 900}


@dataclass
class Window:
    """A queue's runs over a window, read from the per-minute rollups (``history.recent``:
    the oldest minute counts in proportion); run-time percentiles from their histogram,
    within ``backends.rollup.RESOLUTION`` (9%)."""

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


def pause_queue(app: App, queue: str) -> str | None:
    """Stop every worker from claiming from ``queue`` (persisted; running jobs go on).

    Returns a warning when nobody knows the queue (the app does not declare it, the
    backend holds no job of it, no live worker consumes it): likely a typo. The queue is
    paused all the same, since pausing one before its first job is legitimate.
    """
    check_queue_name(queue, error=ConveyorError)
    known = known_queues(app)
    app.backend.pause_queue(queue)
    if app.events.wants(QueuePaused):
        app.events.emit(QueuePaused(app.backend.now(), queue))
    if queue in known:
        return None
    return (
        f"no queue {queue!r} is declared by the app, holds jobs or has a worker (a typo?); "
        f"it is paused ahead of use. Known queues: {', '.join(sorted(known))}"
    )


def resume_queue(app: App, queue: str) -> None:
    app.backend.resume_queue(check_queue_name(queue, error=ConveyorError))
    if app.events.wants(QueueResumed):
        app.events.emit(QueueResumed(app.backend.now(), queue))


def purge_queue(app: App, queue: str) -> int:
    """Revoke every waiting job of ``queue``; running jobs are left alone."""
    return app.backend.purge(check_queue_name(queue, error=ConveyorError))


def known_queues(app: App) -> set[str]:
    """Every queue the app declares, the backend holds jobs in, or a live worker consumes."""
    return _known(app, app.backend.counts(), app.backend.workers())


def _known(app: App, counts: dict[tuple[str, State], int], live: list[WorkerInfo]) -> set[str]:
    return set(app.declared_queues()) | {q for q, _ in counts} | {q for w in live for q in w.queues}


def queue_stats(
    app: App, rollup: Rollup | None = None, live: list[WorkerInfo] | None = None
) -> list[QueueStats]:
    """Every queue the app declares, holds jobs in, is paused, or has a consumer for.

    ``rollup``: the backend's ``run_rollup`` since at least 15 minutes ago, when the
    caller has read it already (a page that also draws the hour's chart reads it once
    for both); read here otherwise. ``live``: ``live_workers(app)``, likewise."""
    backend = app.backend
    now = backend.now()
    counts = backend.counts()
    paused = backend.paused_queues()
    oldest = backend.oldest_waiting()
    live = live_workers(app) if live is None else live  # a worker presumed dead consumes nothing
    if rollup is None:
        rollup = backend.run_rollup(now - max(WINDOWS.values()))
    split = by_queue(rollup)
    names = _known(app, counts, live) | paused
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
                consumers=consumers_of(name, live),
                windows={
                    label: _window(split.get(name, {}), now, size)
                    for label, size in WINDOWS.items()
                },
            )
        )
    return stats


def live_workers(app: App) -> list[WorkerInfo]:
    """The registered workers whose heartbeats are on time: the ones that consume."""
    return alive(app.backend.workers(), app.backend.now())


def consumers_of(queue: str, live: list[WorkerInfo]) -> list[str]:
    """The names of the live workers that consume ``queue``. None: its jobs wait until a
    worker for it starts (doctor's ``queue-without-worker``, the API's ``no_consumer``)."""
    return sorted(w.name for w in live if queue in w.queues)


def start_a_worker(queue: str, command: str = "conveyor -A <app>") -> str:
    """What to do about a queue no live worker consumes (``command``: ``App.command``)."""
    return (
        f"start a worker for it: {command} worker -Q {queue} (a worker started without -Q "
        "consumes every queue its app declares), or route these tasks to a queue a worker consumes"
    )


def resume_hint(queue: str, command: str = "conveyor -A <app>") -> str:
    """What to do about a paused queue whose jobs wait (``command``: ``App.command``)."""
    return f"resume it when ready: {command} resume {queue} (or the dashboard's Queues page)"


def _window(rollup: Rollup, now: float, seconds: int) -> Window:
    runs = recent(rollup, now, seconds)
    return Window(
        finished=runs.finished,
        failed=runs.failed,
        per_minute=runs.finished * 60 / seconds,
        runtime_p50=percentile(runs.runtimes, 50),
        runtime_p95=percentile(runs.runtimes, 95),
        runtime_p99=percentile(runs.runtimes, 99),
    )
