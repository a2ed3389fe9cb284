"""What ``GET /metrics`` exposes to Prometheus: a collector that reads the store when
scraped, through the control functions the CLI, the API and the dashboard call, so one
scrape of any API process covers every worker and queue of the store (docs/metrics.md).

Nothing is counted in this process: every value is a gauge read from the store. The
finished and failed runs come from the per-minute rollups (``backends/rollup.py``),
which are pruned after a day, so a sum over them is not monotonic and cannot be a
Prometheus counter; they are gauges over stated windows (``control.queues.WINDOWS``).
Labels are queues, states, hosts, worker queue lists and schedule names: never a job
id or a pid, which churn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..control.doctor import SCHEDULE_GRACE
from ..control.liveness import scheduler_leader
from ..control.queues import QueueStats, live_workers, queue_stats
from ..errors import ConveyorError
from ..records import WorkerInfo
from ..states import State

if TYPE_CHECKING:
    from ..app import App
    from ..schedules.book import ScheduleView

#: The run-time quantiles exposed per queue and window.
QUANTILES = {"0.5": "runtime_p50", "0.95": "runtime_p95", "0.99": "runtime_p99"}


def registry_for(app: App) -> CollectorRegistry:
    """A registry of its own per API (nothing at module level): the store's collector only,
    not the process's default metrics (an API process's CPU says nothing of the queue)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app))
    return registry


class StoreCollector(Collector):
    """Reads the store at each scrape: a bounded number of reads whatever the number of
    jobs (counts, the oldest waiting job per queue, 15 minutes of rollups, the worker
    registry, the stored schedules, each app's scheduler leader lock)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> Iterable[Metric]:
        return []  # names are not known before a read: registering must not read the store

    def collect(self) -> Iterator[Metric]:
        app = self.app
        live = live_workers(app)  # read once for the queues' consumers and the workers
        yield from queue_metrics(queue_stats(app, live=live))
        yield from worker_metrics(live)
        views, broken = app.schedules.survey()
        yield from schedule_metrics(views, len(broken), app.backend.now())
        yield leader_metric(app, views)


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def queue_metrics(stats: list[QueueStats]) -> Iterator[Metric]:
    jobs = gauge("conveyor_jobs", "Jobs stored, by queue and state (finished ones until pruned)",
                 ["queue", "state"])  # fmt: skip
    length = gauge("conveyor_queue_length",
                   "Jobs waiting to run (PENDING, SCHEDULED, RETRY)", ["queue"])  # fmt: skip
    oldest = gauge("conveyor_queue_oldest_waiting_age_seconds",
                   "Age of the queue's longest-waiting due job (absent: none is due)", ["queue"])  # fmt: skip
    consumers = gauge("conveyor_queue_consumers", "Live workers consuming the queue", ["queue"])
    unconsumed = gauge("conveyor_queue_unconsumed",
                       "1 when the queue, not paused, has waiting jobs and no live worker consumes it",
                       ["queue"])  # fmt: skip
    paused = gauge("conveyor_queue_paused", "1 when the queue is paused", ["queue"])
    for q in stats:
        for state in State:
            jobs.add_metric([q.name, state.value], q.depth.get(state.value, 0))
        length.add_metric([q.name], q.waiting)
        if q.oldest_waiting_age is not None:
            oldest.add_metric([q.name], q.oldest_waiting_age)
        consumers.add_metric([q.name], len(q.consumers))
        unconsumed.add_metric([q.name], int(bool(q.waiting) and not q.paused and not q.consumers))
        paused.add_metric([q.name], int(q.paused))
    yield from (jobs, length, oldest, consumers, unconsumed, paused)
    yield from window_metrics(stats)


def window_metrics(stats: list[QueueStats]) -> Iterator[Metric]:
    """The runs of the last 1, 5 and 15 minutes (``window`` label), from the rollups:
    estimates (the oldest minute counts in proportion) and quantiles within 9%."""
    finished = gauge("conveyor_queue_recent_finished",
                     "Jobs that finished after running, in the last window (an estimate)",
                     ["queue", "window"])  # fmt: skip
    failed = gauge("conveyor_queue_recent_failed",
                   "Jobs that ended FAILURE after running, in the last window (an estimate)",
                   ["queue", "window"])  # fmt: skip
    runtime = gauge("conveyor_queue_recent_run_seconds",
                    "Run-time quantiles of the runs in the minutes the window overlaps (within 9%)",
                    ["queue", "window", "quantile"])  # fmt: skip
    for q in stats:
        for label, window in q.windows.items():
            finished.add_metric([q.name, label], window.finished)
            failed.add_metric([q.name, label], window.failed)
            for quantile, attribute in QUANTILES.items():
                value = getattr(window, attribute)
                if value is not None:
                    runtime.add_metric([q.name, label, quantile], value)
    yield from (finished, failed, runtime)


def worker_metrics(live: list[WorkerInfo]) -> Iterator[Metric]:
    """Live workers grouped by host and the queues they consume (sorted, comma-joined):
    a restarted worker keeps its group, so the series does not churn with pids."""
    labels = ["host", "queues"]
    alive = gauge("conveyor_workers_alive", "Live workers (heartbeats on time)", labels)
    running = gauge("conveyor_workers_jobs_running", "Jobs the live workers are running", labels)
    slots = gauge("conveyor_workers_concurrency", "Job slots of the live workers", labels)
    groups: dict[tuple[str, str], list[int]] = {}
    for w in live:
        group = groups.setdefault((w.host, ",".join(sorted(w.queues))), [0, 0, 0])
        group[0] += 1
        group[1] += len(w.running)
        group[2] += w.concurrency
    for key, (count, busy, concurrency) in sorted(groups.items()):
        alive.add_metric(list(key), count)
        running.add_metric(list(key), busy)
        slots.add_metric(list(key), concurrency)
    yield from (alive, running, slots)


def schedule_metrics(views: list[ScheduleView], broken: int, now: float) -> Iterator[Metric]:
    """Each stored schedule's last tick and next run, and how many are late, by the app
    whose scheduler fires them (apps may share a store: each fires only its own; empty
    for a schedule stored before schedules had owners): due more than ``SCHEDULE_GRACE``
    ago and not fired, which is what no running scheduler leader looks like (doctor's
    ``schedule-late``)."""
    last = gauge("conveyor_schedule_last_tick_timestamp_seconds",
                 "When the schedule's last fired tick was due (POSIX time)", ["schedule", "app"])  # fmt: skip
    upcoming = gauge("conveyor_schedule_next_run_timestamp_seconds",
                     "When the schedule fires next (POSIX time; absent while paused)",
                     ["schedule", "app"])  # fmt: skip
    late = gauge("conveyor_schedules_late",
                 f"Schedules due more than {SCHEDULE_GRACE:g} s ago that have not fired (no scheduler "
                 "of their app leads)", ["app"])  # fmt: skip
    counts: dict[str, int] = {}
    for view in views:
        labels = [view.schedule.name, view.owner or ""]
        counts.setdefault(view.owner or "", 0)
        if view.last_tick is not None:
            last.add_metric(labels, view.last_tick)
        if view.next_run is not None:
            upcoming.add_metric(labels, view.next_run)
            due = not view.schedule.paused and view.next_run < now - SCHEDULE_GRACE
            counts[view.owner or ""] += due
    for owner, count in sorted(counts.items()):
        late.add_metric([owner], count)
    yield from (last, upcoming, late)
    yield gauge_of("conveyor_schedules_broken", "Stored schedules that cannot be read", broken)


def leader_metric(app: App, views: list[ScheduleView]) -> Metric:
    """Whether a scheduler leads each app: this API's when it declares schedules, and
    every app owning a stored schedule (one read of its leader lock each, ``control.liveness.scheduler_leader``,
    as doctor reads it). 0 says no scheduler of that app runs, before a schedule is late."""
    leader = gauge("conveyor_scheduler_leader",
                   "1 when a scheduler of the app leads (holds its live leader lock), 0 when none does",
                   ["app"])  # fmt: skip
    try:
        declares = bool(app.declared_schedules())
    except ConveyorError:  # a broken entry: its app still needs a scheduler
        declares = True
    # this API's own app only when it declares schedules: an app without any needs no
    # scheduler, and a series stuck at 0 would fire every "no leader" alert
    owners = {v.owner for v in views if v.owner} | ({app.name} if declares else set())
    for name in sorted(owners):
        leader.add_metric([name], int(scheduler_leader(app, name) is not None))
    return leader


def gauge_of(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
