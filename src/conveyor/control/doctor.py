"""``conveyor doctor``: checks that explain why work is stuck, each with the fix."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConveyorError
from ..records import JobQuery, WorkerInfo
from ..states import State
from .queues import QueueStats, queue_stats
from .util import age, hide_password

if TYPE_CHECKING:
    from ..app import App

#: Worker clocks further than this from the backend's are reported (seconds).
MAX_CLOCK_SKEW = 2.0
#: A STARTED job whose lease expired longer ago than this is reported as not rescued.
RESCUE_GRACE = 10.0
#: A schedule this late (seconds past its next run) is reported: no scheduler is running.
SCHEDULE_GRACE = 30.0


@dataclass
class Finding:
    check: str
    severity: str  # "error": work is stuck or lost; "warning": worth a look
    problem: str
    fix: str


def diagnose(app: App) -> list[Finding]:
    """Every problem found; an empty list means healthy."""
    url = hide_password(app.conf.backend_url)
    started = time.perf_counter()
    try:
        stats = queue_stats(app)
        live = app.backend.workers()
    except (ConveyorError, OSError) as exc:
        return [Finding("backend", "error", f"the backend at {url} cannot be reached: {exc}",
                        "check the URL (CONVEYOR_BACKEND or App(backend=...)), that the server runs, and "
                        "that this machine can reach it")]  # fmt: skip
    findings = []
    latency = time.perf_counter() - started
    if latency > 1.0:
        findings.append(Finding("backend", "warning", f"the backend at {url} took {latency:.1f}s to answer",
                                "check the backend server's load and the network"))  # fmt: skip
    findings += _unconsumed(stats, live)
    findings += _unregistered(app, stats, live)
    findings += _expired_leases(app)
    findings += _paused(stats)
    findings += _clock_skew(live)
    findings += _late_schedules(app)
    return findings


def _describe(live: list[WorkerInfo]) -> str:
    if not live:
        return "no worker is running"
    return "live workers: " + "; ".join(f"{w.name} consumes {', '.join(w.queues)}" for w in live)


def _unconsumed(stats: list[QueueStats], live: list[WorkerInfo]) -> list[Finding]:
    return [
        Finding(
            "queue-without-worker", "error",
            f"queue {q.name!r} holds {q.waiting} waiting job(s), the oldest {age(q.oldest_waiting_age)} old, "
            f"and no live worker consumes it ({_describe(live)})",
            f"start a worker for it: conveyor -A <app> worker -Q {q.name} (a worker started without -Q "
            "consumes every queue its app declares), or route these tasks to a queue a worker consumes",
        )
        for q in stats if q.waiting and not q.paused and not q.consumers
    ]  # fmt: skip


def _unregistered(app: App, stats: list[QueueStats], live: list[WorkerInfo]) -> list[Finding]:
    findings = []
    consumed = {q.name for q in stats if q.consumers}
    for queue, tasks in sorted(app.backend.waiting_tasks().items()):
        if queue not in consumed:
            continue  # reported as a queue without a worker
        known = {t for w in live if queue in w.queues for t in w.tasks}
        missing = sorted(tasks - known)
        if missing:
            findings.append(Finding(
                "task-not-registered", "error",
                f"queue {queue!r} has waiting jobs for {', '.join(missing)}, which no live worker consuming "
                f"{queue!r} registers: they will fail as unknown tasks (a deploy that skipped the workers?)",
                "deploy the same code to the workers as to the producers, or check the task names",
            ))  # fmt: skip
    return findings


def _expired_leases(app: App) -> list[Finding]:
    now = app.backend.now()
    running = app.backend.list_jobs(JobQuery(states=[State.STARTED], limit=1000))
    stale = [j for j in running if j.lease_until is not None and j.lease_until < now - RESCUE_GRACE]
    if not stale:
        return []
    oldest = max(now - (j.lease_until or now) for j in stale)
    return [Finding(
        "expired-leases", "error",
        f"{len(stale)} job(s) are STARTED but their leases expired up to {age(oldest)} ago: their workers "
        f"died and no live worker has returned them to their queues (e.g. {stale[0].id} in {stale[0].queue!r})",
        "start any worker on this backend: every worker returns expired leases to their queues",
    )]  # fmt: skip


def _paused(stats: list[QueueStats]) -> list[Finding]:
    return [
        Finding("paused-queue", "warning", f"queue {q.name!r} is paused with {q.waiting} waiting job(s)",
                f"resume it when ready: conveyor -A <app> resume {q.name}")
        for q in stats if q.paused and q.waiting
    ]  # fmt: skip


def _late_schedules(app: App) -> list[Finding]:
    now = app.backend.now()
    findings = []
    for view in app.schedules.list():
        if view.schedule.paused:
            continue
        created = app.backend.schedules()[view.schedule.name][1].get("created_at", now)
        due = (
            view.next_run
            if view.next_run is not None
            else view.schedule.next_tick(view.last_tick or created)
        )
        if due < now - SCHEDULE_GRACE:
            findings.append(Finding(
                "schedule-late", "error",
                f"schedule {view.schedule.name!r} was due {age(now - due)} ago and has not fired",
                "start a scheduler (conveyor -A <app> scheduler; run two for failover), or pause the schedule",
            ))  # fmt: skip
    return findings


def _clock_skew(live: list[WorkerInfo]) -> list[Finding]:
    return [
        Finding("clock-skew", "warning",
                f"worker {w.name} ({w.host}) has a clock {w.clock_skew:+.1f}s off the backend's",
                "run NTP (chrony, systemd-timesyncd) on that host: eta, expiry and leases use clocks")
        for w in live if abs(w.clock_skew) > MAX_CLOCK_SKEW
    ]  # fmt: skip
