"""What each page shows, read through the control functions (the ones the API and CLI
call) and shaped for the templates. Each function runs on a worker thread (``app.aio``)
and returns plain data; the templates only lay it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...control import (
    describe_job,
    diagnose,
    list_jobs,
    overview,
    queue_stats,
    recent_workflows,
    throughput,
)
from ...control import workers as registered_workers
from ...control.history import Bucket, Rollup, by_queue
from ...control.liveness import alive, liveness, worker_labels
from ...control.workflows import WORKFLOW_SCAN
from ...errors import JobNotFound
from ...states import State
from ...workflows.engine import task_nodes
from ...workflows.handle import load_workflow

if TYPE_CHECKING:
    from ...app import App
    from ...records import AuditEntry, JobRecord, WorkerInfo
    from ...workflows.engine import Node

STATES = [s.value for s in State]
RECENT_FAILURES = 10
#: The overview orders the newest failures (by creation, the order the store indexes)
#: by when they failed: a job retried by hand that failed again comes first, unless
#: this many failures were created after it.
FAILURE_SCAN = 200
#: Entries per page of the audit trail.
AUDIT_PAGE = 100
#: A job page lists at most this many of its workflow's nodes, and of its group's
#: members (the ones nearest it); the workflow page draws them all.
FAMILY_SHOWN = 25


@dataclass
class Chart:
    """Bars of finished (and failed) jobs per interval, as an SVG draws them."""

    buckets: list[Bucket]
    peak: int
    title: str

    @property
    def total(self) -> int:
        return sum(b.finished for b in self.buckets)

    @property
    def failed(self) -> int:
        return sum(b.failed for b in self.buckets)


#: The charts' window: the last hour, a bar a minute.
CHART_WINDOW = 3600


def chart(app: App, title: str, rollup: Rollup) -> Chart:
    """Bars of the hour's runs from its rollup (every queue's, or one queue's part)."""
    buckets = throughput(app, window=CHART_WINDOW, step=60, rollup=rollup)
    return Chart(buckets, max([b.finished for b in buckets] + [1]), title)


def hour_rollup(app: App) -> Rollup:
    """The last hour's per-minute rollups, read once per page: the charts, the queues'
    windows and the totals all count them."""
    return app.backend.run_rollup(app.backend.now() - CHART_WINDOW)


def overview_page(app: App) -> dict[str, Any]:
    failures = newest_failures(app)
    rollup = hour_rollup(app)
    registered = registered_workers(app)  # read once: the list, the counts and the checks
    now = app.backend.now()
    live = alive(registered, now)
    stats = queue_stats(app, rollup, live)
    return {
        "overview": overview(app, rollup, live),
        "findings": diagnose(app, stats, registered),
        "queues": stats,
        "workers": [(w, liveness(w, now)) for w in registered],
        "failures": failures,
        "chart": chart(app, "Finished per minute, last hour", rollup),
        "now": now,
    }


def newest_failures(app: App) -> list[JobRecord]:
    """The ``RECENT_FAILURES`` that failed last, newest first, among the ``FAILURE_SCAN``
    newest failed jobs."""
    failed = list_jobs(app, states=[State.FAILURE.value], limit=FAILURE_SCAN).jobs
    failed.sort(key=lambda j: j.finished_at or j.created_at, reverse=True)
    return failed[:RECENT_FAILURES]


def jobs_page(app: App, filters: dict[str, Any], cursor: str | None, limit: int) -> dict[str, Any]:
    page = list_jobs(app, cursor=cursor, limit=limit, **filters)
    ran = [j.worker for j in page.jobs if j.worker] + (filters.get("workers") or [])
    registered = registered_workers(app)  # read once: the filters' choices and the labels
    return {"jobs": page.jobs, "next_cursor": page.next_cursor, "states": STATES,
            "queues": suggested_queues(app, registered),
            "names": {w.id: w.name for w in registered},  # jobs record the id; people know the name
            "workers": worker_labels(app, ran, registered)}  # fmt: skip


def suggested_queues(app: App, registered: list[WorkerInfo]) -> list[str]:
    """Queue names to offer in a filter: declared, paused or consumed (by ``registered``).
    Not those known only from the jobs they hold: that needs the counts, too slow for a
    list's first byte on a large store (a name typed in still filters)."""
    consumed = {q for w in registered for q in w.queues}
    return sorted(set(app.declared_queues()) | app.backend.paused_queues() | consumed)


@dataclass
class Step:
    """One line of a job's timeline."""

    label: str
    at: float
    worker: str | None = None
    error: dict[str, Any] | None = None


def timeline(job: dict[str, Any]) -> list[Step]:
    """Created, due, each attempt's start and end (from the attempt history), and the
    attempt running now or the end no attempt recorded (a job revoked while waiting)."""
    steps = [Step("created", job["created_at"])]
    if job["run_at"] and job["run_at"] > job["created_at"] + 0.001:
        steps.append(Step("due", job["run_at"]))
    attempts = job["attempts"]
    for entry in attempts:
        if entry.get("running"):  # the attempt running now: said below, from the job
            continue
        if entry.get("started_at"):
            steps.append(
                Step(f"attempt {entry['attempt']} started", entry["started_at"], entry["worker"])
            )
        label = "lost" if entry.get("lost") else entry["state"]
        steps.append(Step(label, entry["finished_at"], entry["worker"], entry["error"]))
    if job["state"] == State.STARTED.value and job["started_at"]:
        steps.append(Step(f"attempt {job['attempt']} started", job["started_at"], job["worker"]))
    elif job["finished_at"] and (not attempts or attempts[-1]["state"] != job["state"]):
        # (a running attempt is listed only while the job is STARTED, the branch above)
        steps.append(Step(job["state"], job["finished_at"], job["worker"], job["error"]))
    return sorted(steps, key=lambda s: s.at)


def job_page(app: App, job_id: str, *, cancelled: bool = False) -> dict[str, Any]:
    """``cancelled``: shown after its Cancel (or Terminate), so the page says what that
    has done by now (``job.revoke_status``), live, beside the state it matches."""
    job = describe_job(app, job_id, revoked=cancelled)
    now = app.backend.now()
    steps = timeline(job)
    ran = [job["worker"]] + [s.worker for s in steps]
    return {"job": job, "timeline": steps, "now": now,
            "workers": worker_labels(app, [w for w in ran if w]),
            "family": family(app, job["id"], job["workflow_id"])}  # fmt: skip


@dataclass
class Member:
    """Another job of a job's workflow, as a link: its task, and its state once created."""

    id: str
    task: str
    record: JobRecord | None


@dataclass
class Family:
    """A job's place in its workflow (read as the workflow page and the API's workflow
    status read it: ``load_workflow``): the members of its group, and every node."""

    group: list[Member]
    nodes: list[Member]
    #: How many nodes and group members are not listed (beyond ``FAMILY_SHOWN``).
    more_nodes: int = 0
    more_group: int = 0
    #: The first listed node's place in the workflow (0: the first node).
    first: int = 0
    #: Why nothing is shown: the workflow's spec was pruned.
    missing: str | None = None


def family(app: App, job_id: str, workflow_id: str | None) -> Family | None:
    if not workflow_id:
        return None
    try:
        spec = load_workflow(app, workflow_id).spec
    except JobNotFound as exc:
        return Family([], [], missing=str(exc))
    nodes = list(task_nodes(spec))
    group = _group_of(spec, job_id)
    mates = [] if group is None else list(task_nodes(group))
    shown_nodes = _nearest(nodes, job_id)
    shown_mates = [n for n in _nearest(mates, job_id) if n["id"] != job_id]
    # Only the records listed are read: a group of thousands costs the page 2 x 25.
    records = app.backend.get_many([n["id"] for n in shown_nodes + shown_mates])

    def members(found: list[Node]) -> list[Member]:
        return [Member(n["id"], n["task"], records.get(n["id"])) for n in found]

    return Family(members(shown_mates), members(shown_nodes), len(nodes) - len(shown_nodes),
                  max(0, len(mates) - 1 - len(shown_mates)), nodes.index(shown_nodes[0]) if nodes else 0)  # fmt: skip


def _nearest(nodes: list[Node], job_id: str) -> list[Node]:
    """At most ``FAMILY_SHOWN`` of ``nodes``, in order, around the job's place among them."""
    at = next((i for i, n in enumerate(nodes) if n["id"] == job_id), 0)
    start = max(0, min(at - FAMILY_SHOWN // 2, len(nodes) - FAMILY_SHOWN))
    return nodes[start : start + FAMILY_SHOWN]


def _parts(node: Node) -> list[Node]:
    kind = node["t"]
    if kind == "chain":
        return list(node["steps"])
    if kind == "group":
        return list(node["members"])
    if kind == "chord":
        return [node["group"], node["callback"]]
    return []


def _group_of(node: Node, job_id: str) -> Node | None:
    """The innermost group (a chord's header included) holding the job, if any."""
    for part in _parts(node):
        if any(n["id"] == job_id for n in task_nodes(part)):
            inner = _group_of(part, job_id)
            return inner if inner is not None or node["t"] != "group" else node
    return None


def queues_page(app: App) -> dict[str, Any]:
    rollup = hour_rollup(app)
    stats = queue_stats(app, rollup)
    split = by_queue(rollup)
    charts = {
        q.name: chart(app, f"{q.name}: finished per minute", split.get(q.name, {})) for q in stats
    }
    return {"queues": stats, "charts": charts, "states": STATES}


def workers_page(app: App) -> dict[str, Any]:
    now = app.backend.now()
    found = registered_workers(app)
    held = app.backend.get_many([job_id for w in found for job_id in w.running])
    return {
        "workers": [(w, liveness(w, now), [held.get(j) or j for j in w.running]) for w in found],
        "now": now,
    }


def schedules_page(app: App) -> dict[str, Any]:
    views = sorted(app.schedules.list(), key=lambda v: v.schedule.name)
    return {"schedules": views, "now": app.backend.now(), "app_name": app.name}


def workflows_page(app: App) -> dict[str, Any]:
    """Workflows of the newest ``WORKFLOW_SCAN`` jobs, each with its state: the store
    indexes jobs, not workflows, so older workflows are found by id (the form) or from
    their jobs' pages."""
    return {"recent": recent_workflows(app), "scanned": WORKFLOW_SCAN}


def audit_page(app: App, before: int | None, target: str | None) -> dict[str, Any]:
    """The audit trail, newest first, read as the API's ``GET /audit`` reads it."""
    found: list[AuditEntry] = app.backend.audit(before=before, limit=AUDIT_PAGE, target=target)
    more = found[-1].seq if len(found) == AUDIT_PAGE else None
    return {"entries": found, "next_before": more}


def workflow_page(app: App, workflow_id: str) -> dict[str, Any]:
    workflow = load_workflow(app, workflow_id)
    return {"workflow": workflow, "spec": workflow.spec, "records": workflow.records(),
            "state": workflow.state}  # fmt: skip


def node_kind(node: Node) -> str:
    return str(node["t"])


def when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"
