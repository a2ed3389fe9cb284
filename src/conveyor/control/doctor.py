"""``conveyor doctor``: checks that explain why work is stuck, each with the fix."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..backends.base import TASK_SAMPLE
from ..backends.sqlite.connection import parse_path
from ..errors import ConfigurationError, ConveyorError, MissingDependency
from ..records import JobQuery, JobRecord, WorkerInfo
from ..schedules import owners
from ..states import State
from .liveness import OVERDUE_BEATS, Leader, alive, liveness, scheduler_leader
from .queues import QueueStats, queue_stats, resume_hint, start_a_worker
from .util import age, clock, hide_password

if TYPE_CHECKING:
    from ..app import App
    from ..schedules import ScheduleView

#: Worker clocks further than this from the backend's are reported (seconds).
MAX_CLOCK_SKEW = 2.0
#: A STARTED job whose lease expired longer ago than this is reported as not rescued.
RESCUE_GRACE = 10.0
#: A schedule this late (seconds past its next run) is reported: no scheduler is running.
SCHEDULE_GRACE = 30.0
#: A queue whose oldest waiting job is older than this, with every slot of its workers
#: busy, is reported as saturated (seconds).
SATURATED_AFTER = 60.0
#: A dead worker's finding names at most this many of its jobs (the JSON lists them all).
JOBS_NAMED = 5


@dataclass
class Finding:
    check: str
    severity: str  # "error": work is stuck or lost; "warning": worth a look
    problem: str
    fix: str
    #: The facts behind the problem, for scripts (``doctor --json``).
    data: dict[str, Any] = field(default_factory=dict)


def sqlite_file(url: str) -> tuple[Path, bool] | None:
    """The file a ``sqlite://`` URL names, made absolute (against the current directory),
    and whether the URL gave it relative; None for any other backend."""
    if urlsplit(url).scheme.lower() != "sqlite":
        return None
    path = Path(parse_path(url)[0])
    return path.absolute(), not path.is_absolute()


def absolute_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute: a command to run from another
    directory reads the same file."""
    found = sqlite_file(url)
    if found is None or not found[1]:
        return url
    query = urlsplit(url).query
    return f"sqlite:///{found[0]}" + (f"?{query}" if query else "")


def _relative_note(url: str) -> str:
    found = sqlite_file(url)
    if found is None or not found[1]:
        return ""
    return f" (a relative SQLite path is relative to the current directory: this one is {found[0]})"


def missing_store(app: App) -> str | None:
    """Why a read-only command should not open the app's store: a SQLite file that does
    not exist, or a backend with no store where its name says (``Backend.missing_store``:
    a PostgreSQL schema); opening either would create an empty store. None when there is
    a store to read, or when the backend cannot be built or asked (the command reports
    that itself)."""
    url = app.conf.backend_url
    found = sqlite_file(url)
    if found is None:
        try:
            return app.backend.missing_store()
        except ConveyorError:
            return None
    if found[0].exists():
        return None
    where = (
        f" (a relative SQLite path is relative to the current directory, here {Path.cwd()})"
        if found[1]
        else ""
    )
    return (
        f"there is no store at {url}: {found[0]} does not exist{where}. Run this from the folder "
        "the workers run in, or point CONVEYOR_BACKEND (or App(backend=...)) at the store they "
        "use, by its absolute path (sqlite:////path/to/conveyor.db)"
    )


def diagnose(
    app: App, stats: list[QueueStats] | None = None, registered: list[WorkerInfo] | None = None
) -> list[Finding]:
    """Every problem found; an empty list means healthy. ``stats``: ``queue_stats``,
    and ``registered``: ``workers``, when the caller has them already (the overview page
    shows them too); the registry is read once either way (``queue_stats`` is handed the
    live workers of the one read)."""
    url = hide_password(app.conf.backend_url)
    started = time.perf_counter()
    try:
        registered = app.backend.workers() if registered is None else registered
        now = app.backend.now()
        live = alive(registered, now)
        if stats is None:
            stats = queue_stats(app, live=live)
        running = app.backend.list_jobs(JobQuery(states=[State.STARTED], limit=1000))
    except MissingDependency as exc:  # not a connection problem: the driver is not installed
        return [Finding("backend", "error", f"the backend at {url} cannot be used here: {exc}",
                        "run that pip command in the environment conveyor runs from, then try again")]  # fmt: skip
    except ConfigurationError as exc:  # not a server down: a URL to fix (mysql://, a typo)
        return [Finding("backend", "error", f"the backend at {url} cannot be used: {exc}",
                        "fix CONVEYOR_BACKEND (or App(backend=...)) as the message says")]  # fmt: skip
    except (ConveyorError, OSError) as exc:
        return [Finding("backend", "error", f"the backend at {url} cannot be reached: {exc}",
                        "check the URL (CONVEYOR_BACKEND or App(backend=...)), that the server runs, and "
                        "that this machine can reach it")]  # fmt: skip
    findings = []
    latency = time.perf_counter() - started
    if latency > 1.0:
        findings.append(Finding("backend", "warning", f"the backend at {url} took {latency:.1f}s to answer",
                                "check the backend server's load and the network"))  # fmt: skip
    dead = [w for w in registered if not liveness(w, now).alive]
    # read only for the queues a finding names: the expiry of up to TASK_SAMPLE jobs each
    expired = functools.cache(lambda queue: expired_waiting(app, queue))
    waiting = app.backend.waiting_tasks()
    findings += _unconsumed(app, stats, live, dead, now, expired, waiting)
    findings += _saturated(stats, live, app.command, expired)
    findings += _unregistered(stats, live, waiting)
    findings += [_dead_worker(app, w, running, live, now) for w in dead]
    dead_ids = {w.id for w in dead}
    findings += _expired_leases([j for j in running if j.worker not in dead_ids], now)
    findings += _paused(stats, app.command, expired)
    findings += _clock_skew(live)
    findings += _schedule_findings(app)
    if not registered and not app.backend.list_jobs(JobQuery(limit=1)):
        findings.append(_unused(app, url))
    return findings


def _unused(app: App, url: str) -> Finding:
    """A store no worker and no job has used: most often not the one meant (a relative
    SQLite path read from another directory, or a CONVEYOR_BACKEND not set here)."""
    return Finding(
        "empty-store", "warning",
        f"the store at {url} holds no jobs and no worker is registered there, so there is nothing "
        f"to check{_relative_note(app.conf.backend_url)}",
        f"if your workers use another store, point CONVEYOR_BACKEND (or App(backend=...)) at it; "
        f"else start a worker ({app.command} worker) and queue work",
    )  # fmt: skip


def _describe(live: list[WorkerInfo], dead: list[WorkerInfo], now: float) -> str:
    text = (
        "live workers: " + "; ".join(f"{w.name} consumes {', '.join(w.queues)}" for w in live)
        if live
        else "no worker is running"
    )
    if dead:
        text += "; presumed dead: " + "; ".join(
            f"{w.name} (silent for {age(now - w.last_seen)}) consumed {', '.join(w.queues)}"
            for w in dead
        )
    return text


@dataclass(frozen=True)
class Expired:
    """A queue's waiting jobs whose ``expires`` has passed: they will not run (each ends
    REVOKED, ``Expired``, when a worker reaches it), so they are not work that waits."""

    count: int
    #: How many waiting jobs were looked at to count them (``TASK_SAMPLE`` at most, the
    #: next in claim order: no backend indexes waiting jobs by expiry).
    read: int


def expired_waiting(app: App, queue: str) -> Expired:
    """The expired jobs among a queue's next waiting ones (``Backend.expired_waiting``:
    their expiry only, no record read)."""
    return Expired(*app.backend.expired_waiting(queue))


def _holds(q: QueueStats, expired: Callable[[str], Expired]) -> str:
    """What a queue holds, its expired jobs counted apart from those that wait to run."""
    gone = expired(q.name)
    if not gone.count:
        return f"{q.waiting} waiting job(s), the oldest {age(q.oldest_waiting_age)} old"
    among = f" (counted among the next {gone.read:,})" if gone.read >= TASK_SAMPLE else ""
    return (
        f"{q.waiting - gone.count} waiting job(s) and {gone.count} expired one(s){among} that "
        "will not run (each ends REVOKED, Expired, when a worker reaches it; or revoke them)"
    )


def _unconsumed(
    app: App,
    stats: list[QueueStats],
    live: list[WorkerInfo],
    dead: list[WorkerInfo],
    now: float,
    expired: Callable[[str], Expired],
    waiting: dict[str, set[str]],
) -> list[Finding]:
    findings = []
    for q in stats:
        if not q.waiting or q.paused or q.consumers:
            continue
        gone = expired(q.name)
        only_expired = gone.count == q.waiting  # nothing in it would run
        findings.append(Finding(
            "queue-without-worker", "warning" if only_expired else "error",
            f"queue {q.name!r} holds {_holds(q, expired)}, and no live worker consumes it "
            f"({_describe(live, dead, now)})",
            _start_whose_worker(app, q.name, waiting.get(q.name, set())),
            {"queue": q.name, "waiting": q.waiting - gone.count, "expired": gone.count},
        ))  # fmt: skip
    return findings


def _saturated(
    stats: list[QueueStats], live: list[WorkerInfo], cmd: str, expired: Callable[[str], Expired]
) -> list[Finding]:
    """Queues whose jobs wait because every slot of the workers consuming them is taken
    (long jobs, or too few workers): consumed, so no other check names them."""
    findings = []
    for q in stats:
        if not q.waiting or q.paused or (q.oldest_waiting_age or 0.0) < SATURATED_AFTER:
            continue
        consumers = [w for w in live if q.name in w.queues]
        if consumers and all(len(w.running) >= w.concurrency for w in consumers):
            findings.append(Finding(
                "queue-saturated", "warning",
                f"queue {q.name!r} holds {_holds(q, expired)}, and every slot of the "
                f"{len(consumers)} worker(s) consuming it is busy "
                f"({sum(w.concurrency for w in consumers)} in all)",
                f"add workers ({cmd} worker -Q {q.name}) or slots (-c), or look at what runs long "
                "on the jobs page (state STARTED)",
            ))  # fmt: skip
    return findings


def _start_whose_worker(app: App, queue: str, tasks: set[str]) -> str:
    """Whose worker to start for an unconsumed queue: this app's, unless every task waiting
    there is one it does not register (another app's jobs, in a store the apps share)."""
    if not tasks or any(app.tasks.get(t) is not None for t in tasks):
        return start_a_worker(queue, app.command)
    listed = ", ".join(sorted(tasks)[:5]) + (
        f" and {len(tasks) - 5} more" if len(tasks) > 5 else ""
    )
    return (
        f"its jobs are for tasks this app does not register ({listed}): start a worker of the "
        f"app that does (that app's own `conveyor -A ... worker -Q {queue}`), or, if they were "
        f"sent here by mistake, purge them ({app.command} purge {queue})"
    )


def _unregistered(
    stats: list[QueueStats], live: list[WorkerInfo], waiting: dict[str, set[str]]
) -> list[Finding]:
    findings = []
    consumed = {q.name for q in stats if q.consumers}
    for queue, tasks in sorted(waiting.items()):
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


def _dead_worker(
    app: App, worker: WorkerInfo, running: list[JobRecord], live: list[WorkerInfo], now: float
) -> Finding:
    """A registered worker whose heartbeats stopped: killed, its machine lost, or stalled."""
    state = liveness(worker, now)
    held = [j for j in running if j.worker == worker.id]
    rescue = app.conf.rescue_interval
    data = {
        "worker": {"id": worker.id, "name": worker.name, "host": worker.host, "pid": worker.pid,
                   "queues": worker.queues, "last_seen": worker.last_seen, "silent_for": state.silent_for,
                   "dead_after": state.dead_after},
        # A job returns to its queue at the first rescue after its lease expires.
        "jobs": [{"id": j.id, "task": j.task, "queue": j.queue, "lease_until": j.lease_until} for j in held],
        "rescue_interval": rescue,
    }  # fmt: skip
    problem = (
        f"worker {worker.name} (host {worker.host}, pid {worker.pid}) stopped heartbeating: its last "
        f"heartbeat was at {clock(worker.last_seen)}, {age(state.silent_for)} ago, more than "
        f"{OVERDUE_BEATS} of its {worker.heartbeat_interval:g}s intervals, so it is presumed dead "
        f"(killed, its machine lost, or stalled) and no longer counts as a consumer of {', '.join(worker.queues)}. "
    )  # fmt: skip
    stalled = (
        f"If it is stalled (stopped, swapping, blocked), look at pid {worker.pid} on {worker.host}"
    )
    if not held:
        return Finding("dead-worker", "warning", problem + "It holds no jobs.",
                       f"nothing to do if it was killed; it leaves the registry a minute after its last "
                       f"heartbeat. {stalled}", data)  # fmt: skip
    named = "; ".join(
        f"{j.id} ({j.task} in {j.queue!r}, {_lease(j, now)})" for j in held[:JOBS_NAMED]
    )
    more = f" and {len(held) - JOBS_NAMED} more" if len(held) > JOBS_NAMED else ""
    rescuers = (
        f"the live workers ({', '.join(w.name for w in live)}) return expired leases every {rescue:g}s"
        if live
        else f"no live worker runs to return them (every worker returns expired leases every {rescue:g}s)"
    )
    return Finding(
        "dead-worker", "error",
        f"{problem}It holds {len(held)} job(s) that nothing runs: {named}{more}. Each returns to its "
        f"queue at the first rescue after its lease expires: {rescuers}",
        ("nothing to do if it died: its jobs come back by themselves. " if live
         else f"start a worker ({app.command} worker): it returns these jobs to their queues. ")
        + f"{stalled}: what it finishes late is refused, as its jobs run again elsewhere",
        data,
    )  # fmt: skip


def _lease(job: JobRecord, now: float) -> str:
    if job.lease_until is None:
        return "no lease"
    if job.lease_until > now:
        return f"lease expires at {clock(job.lease_until)}, in {age(job.lease_until - now)}"
    return f"lease expired at {clock(job.lease_until)}, {age(now - job.lease_until)} ago"


def _expired_leases(running: list[JobRecord], now: float) -> list[Finding]:
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


def _paused(stats: list[QueueStats], cmd: str, expired: Callable[[str], Expired]) -> list[Finding]:
    return [
        Finding("paused-queue", "warning", f"queue {q.name!r} is paused and holds {_holds(q, expired)}",
                resume_hint(q.name, cmd))
        for q in stats if q.paused and q.waiting
    ]  # fmt: skip


def _schedule_findings(app: App) -> list[Finding]:
    """Stored schedules that cannot be read, and readable ones no scheduler fires."""
    now = app.backend.now()
    views, broken = app.schedules.survey()  # one read of the stored schedules for both
    findings = [
        Finding(
            "schedule-broken",
            "error",
            f"schedule {name!r} is stored but cannot be read, so it never fires: {why}",
            f"fix it ({app.command} schedules edit {name} ...) or remove it "
            f"({app.command} schedules delete {name})",
        )
        for name, why in sorted(broken.items())
    ]
    findings += _never_stored(app, {v.schedule.name for v in views} | set(broken))
    findings += _other_apps_schedules(app, views)
    leaders = functools.cache(lambda name: scheduler_leader(app, name))  # one read an app
    for view in views:
        if view.schedule.paused:
            continue
        due = view.next_run  # a schedule no scheduler has seen: its first tick since stored
        if due is not None and due < now - SCHEDULE_GRACE:
            ours = owners.fired_by(app, view.owner, view.schedule.task)
            whose = app.name if ours else view.owner  # None: an app that registers its task
            leader = None if whose is None else leaders(whose)
            findings.append(_late(app, view, now - due, whose, leader))
    return findings


def _late(
    app: App, view: ScheduleView, late: float, whose: str | None, leader: Leader | None
) -> Finding:
    """A schedule due ``late`` seconds ago and not fired: no scheduler of the app that
    fires it leads (its leader lock is free), or one leads and does not fire it."""
    name = view.schedule.name
    data = {"schedule": name, "app": whose, "leader": leader and leader.scheduler}
    if leader is not None:
        return Finding(
            "schedule-late", "error",
            f"schedule {name!r} was due {age(late)} ago and has not fired, though scheduler "
            f"{leader.scheduler} leads app {whose!r} (it renewed its lock, held until "
            f"{clock(leader.until)})",
            "look at that scheduler's log: it logs a schedule it fails to fire (once, until "
            "it fires again); check its host's clock (a scheduler whose clock runs behind "
            "fires late: run NTP); or restart it",
            data,
        )  # fmt: skip
    ours = whose == app.name
    run = f"{app.command} scheduler" if ours else "that app's own `conveyor -A ... scheduler`"
    none = "" if whose is None else f": no scheduler of app {whose!r} leads (none holds its lock)"
    return Finding(
        "schedule-late", "error",
        f"schedule {name!r} was due {age(late)} ago and has not fired{none}",
        f"start {_whose_scheduler(app, view)} ({run}; run two for failover), or pause the schedule",
        data,
    )  # fmt: skip


def _other_apps_schedules(app: App, views: list[ScheduleView]) -> list[Finding]:
    """Schedules of other apps in this app's store: its scheduler does not fire them. Apps
    share a store on purpose (a migration) or by accident (one URL, one prefix)."""
    found = owners.others(app, views)
    if not found:
        return []
    return [Finding(
        "schedule-other-apps", "warning", owners.describe_others(app, found),
        "nothing to do if the apps share this store on purpose; otherwise give each app a "
        "store of its own (Redis: another db, or ?prefix=; docs/redis.md), and delete what "
        f"was stored by mistake ({app.command} schedules delete NAME)",
        {"apps": found},
    )]  # fmt: skip


def _whose_scheduler(app: App, view: ScheduleView) -> str:
    """Whose scheduler fires ``view``: this app's, or the app it belongs to (``owners``)."""
    if owners.fired_by(app, view.owner, view.schedule.task):
        return "a scheduler"
    if view.owner is None:
        return f"the scheduler of an app that registers task {view.schedule.task!r}"
    return f"the scheduler of app {view.owner!r}"


def _never_stored(app: App, stored: set[str]) -> list[Finding]:
    """Schedules the app declares in code that no scheduler has stored: a scheduler
    stores them as it starts, so none has run with this code (a worker alone does not
    fire schedules), and they have never fired."""
    try:
        declared = app.declared_schedules()
    except ConveyorError:
        return []  # a declaration the scheduler refuses: it says so where it starts
    return [
        Finding(
            "schedule-never-stored", "warning",
            f"schedule {name!r} is declared in code but no scheduler has stored it, so it has "
            "never fired (a worker alone does not fire schedules)",
            f"start a scheduler ({app.command} scheduler), or a worker with --beat, or everything "
            f"with {app.command} up; a scheduler already running older code stores it once restarted",
        )
        for name in sorted(set(declared) - stored)
    ]  # fmt: skip


def _clock_skew(live: list[WorkerInfo]) -> list[Finding]:
    return [
        Finding("clock-skew", "warning",
                f"worker {w.name} ({w.host}) has a clock {w.clock_skew:+.1f}s off the backend's",
                "run NTP (chrony, systemd-timesyncd) on that host: eta, expiry and leases use clocks")
        for w in live if abs(w.clock_skew) > MAX_CLOCK_SKEW
    ]  # fmt: skip
