"""``conveyor inspect queues|workers|jobs|workflows|job ID``."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.text import Text

from .. import control
from ..control.jobs import LEASE_EXPIRED
from ..control.liveness import Liveness, liveness
from ..control.util import age, parse_duration
from ..control.workflows import WORKFLOW_SCAN
from ..records import JobRecord
from . import AppRef, cli
from .output import errors_as_usage, json_option, out, print_json, print_table, seconds, when


@cli.group()
def inspect() -> None:
    """Look at queues, workers, jobs and workflows."""


@inspect.command("queues")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_queues(ref: AppRef, as_json: bool) -> None:
    """Depth by state, oldest waiting age, consumers, throughput and runtimes."""
    stats = control.queue_stats(ref.load(existing=True))
    if as_json:
        return print_json(stats)
    rows = []
    for q in stats:
        w = q.windows["5m"]
        name = Text.assemble(q.name, (" (paused)", "yellow")) if q.paused else q.name
        rows.append([name, str(q.waiting), str(q.running), age(q.oldest_waiting_age),
                     ", ".join(q.consumers) or Text("none", "red"), f"{w.per_minute:.1f}",
                     f"{seconds(w.runtime_p50)} / {seconds(w.runtime_p95)}", str(w.failed)])  # fmt: skip
    headers = ("queue", "waiting", "running", "oldest", "consumers", "done/min (5m)",
               "runtime p50/p95 (5m)", "failed (5m)")  # fmt: skip
    print_table("Queues", headers, rows, shrink={"consumers"})
    return None


@inspect.command("workers")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_workers(ref: AppRef, as_json: bool) -> None:
    """The workers: queues, pool, concurrency, current jobs, last heartbeat, and whether
    they are alive (a worker whose heartbeats stopped is shown as presumed dead)."""
    app = ref.load(existing=True)
    found = control.workers(app)
    now = app.backend.now()
    if as_json:
        return print_json([control.to_json(w) | control.to_json(liveness(w, now)) for w in found])
    if not found:
        out.print("[yellow]no live workers[/]")
        return None
    rows = [
        [w.name, _state(liveness(w, now)), f"{w.host}/{w.pid}", ", ".join(w.queues), f"{w.pool} x {w.concurrency}",
         str(len(w.running)), f"{age(now - w.last_seen)} ago", age(now - w.started_at), w.version]
        for w in found
    ]  # fmt: skip
    headers = ("name", "state", "host/pid", "queues", "pool", "running", "last heartbeat", "up", "version")  # fmt: skip
    print_table("Workers", headers, rows)
    return None


def _state(state: Liveness) -> str | Text:
    if state.alive:
        return "alive"
    return Text(f"dead? silent {age(state.silent_for)} (> {state.dead_after:g}s)", "red")


@inspect.command("jobs")
@click.option(
    "--state",
    "states",
    multiple=True,
    help="PENDING, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED (repeatable).",
)
@click.option("--queue", "queues", multiple=True, help="Repeatable.")
@click.option("--task", "tasks", multiple=True, help="Repeatable.")
@click.option("--worker", "workers", multiple=True, help="Jobs a worker ran: its id (repeatable).")
@click.option("--since", help="Created within this long, e.g. 15m, 2h, 1d.")
@click.option("--until", "until_", help="Created longer ago than this, e.g. 1h.")
@click.option("--text", help="Text that appears in the job's arguments.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor printed by the previous page.")
@click.option("--oldest", is_flag=True, help="Oldest first (keep it with --cursor).")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_jobs(ref: AppRef, states: tuple[str, ...], queues: tuple[str, ...], tasks: tuple[str, ...],
                 workers: tuple[str, ...], since: str | None, until_: str | None, text: str | None, limit: int, cursor: str | None,
                 oldest: bool, as_json: bool) -> None:  # fmt: skip
    """Jobs, newest first (or oldest), filtered and a page at a time."""
    now = time.time()
    try:
        after = None if since is None else now - parse_duration(since)
        before = None if until_ is None else now - parse_duration(until_)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    page = control.list_jobs(ref.load(existing=True), states=list(states), queues=list(queues), tasks=list(tasks),
                             workers=list(workers), created_after=after, created_before=before, text=text, cursor=cursor, limit=limit,
                             oldest_first=oldest)  # fmt: skip
    if as_json:
        return print_json(
            {
                "jobs": [control.to_json(j) | {"payload": None} for j in page.jobs],
                "next_cursor": page.next_cursor,
            }
        )
    rows = [
        [j.id, j.task, j.queue, j.state.value, str(j.attempt), when(j.created_at), _detail(j)]
        for j in page.jobs
    ]
    headers = ("id", "task", "queue", "state", "try", "created", "detail")
    print_table("Jobs", headers, rows, shrink={"detail"})
    if page.next_cursor:
        out.print(f"more: --cursor {page.next_cursor}")
    return None


def _detail(job: JobRecord) -> str:
    if job.error:
        return f"{job.error.get('type')}: {job.error.get('message')}"
    if job.progress and job.state == "STARTED":
        return f"{percent(job.progress.get('percent'))} {job.progress.get('message') or ''}".strip()
    return ""


@inspect.command("workflows")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_workflows(ref: AppRef, as_json: bool) -> None:
    """The workflows of the newest jobs, with their state (an older one: inspect its
    jobs, or GET /api/workflows/ID)."""
    found = control.recent_workflows(ref.load(existing=True))
    if as_json:
        return print_json(found)
    if not found:
        out.print(f"no workflow among the newest {WORKFLOW_SCAN} jobs")
        return None
    rows = [[w.id, w.state.value if w.state else "large: not read" if w.jobs else "pruned",
             str(w.jobs or "-"), w.task, when(w.created_at)] for w in found]  # fmt: skip
    headers = ("id", "state", "jobs", "newest job's task", "created")
    print_table("Workflows", headers, rows)
    return None


@inspect.command("job")
@click.argument("job_id")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_job(ref: AppRef, job_id: str, as_json: bool) -> None:
    """One job in full: arguments, result, error with traceback, attempts, timings."""
    data = control.describe_job(ref.load(existing=True), job_id)
    if as_json:
        return print_json(data)
    out.print(
        f"[bold]{data['task']}[/] {data['id']}  [bold]{data['state']}[/]  queue {data['queue']}  priority {data['priority']}"
    )
    out.print(f"args {data['args']!r}  kwargs {data['kwargs']!r}")
    out.print(f"created {when(data['created_at'])}  started {when(data['started_at'])}  finished {when(data['finished_at'])}"
              f"  waited {seconds(data['timings']['waited'])}  ran {seconds(data['timings']['ran'])}")  # fmt: skip
    if data["worker"]:
        out.print(f"worker {_worker(data['worker_name'], data['worker'])}", markup=False)
    if data["progress"]:
        p = data["progress"]
        out.print(
            f"progress {percent(p.get('percent'))} {p.get('message') or ''}".rstrip(), markup=False
        )
    _print_outcome(data)
    if data["attempts"]:
        rows = [
            [str(a["attempt"]), "lost" if a.get("lost") else a["state"], _worker(a.get("worker_name"), a["worker"]),
             when(a["started_at"]),
             # an expired lease's end is when it was found expired, not when the job stopped
             # (a death the worker saw, WorkerLost, ends when it saw it)
             "running" if a.get("running") else "?" if _expired(a) or a["started_at"] is None
             else seconds(a["finished_at"] - a["started_at"]),
             f"{a['error']['type']}: {a['error']['message'] or ''}" if a.get("error") else ""]
            for a in data["attempts"]
        ]  # fmt: skip
        print_table(
            "Attempts", ("#", "state", "worker", "started", "ran", "error"), rows, shrink={"error"}
        )
    return None


def _expired(attempt: dict[str, Any]) -> bool:
    """A lost attempt found by its lease's expiry: when it really stopped is unknown."""
    return bool(attempt.get("lost")) and (attempt.get("error") or {}).get("type") == LEASE_EXPIRED


def _worker(name: str | None, worker_id: str | None) -> str:
    """A worker as ``name (id)`` where the registry still knows its name, else its id."""
    if not worker_id:
        return "-"
    return f"{name} ({worker_id})" if name else worker_id


def percent(value: Any) -> str:
    """A progress percentage as people read it: 13%, 12.5% (not 13.333333333333334%)."""
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.1f}".removesuffix(".0") + "%"


def _print_outcome(data: dict[str, Any]) -> None:
    """The result or error of ``inspect job``, what became of a revoke, and why a failure
    was not retried."""
    if data["state"] == "SUCCESS":
        out.print(f"result {data['result']!r}")
    if data["revoke_note"]:
        out.print(data["revoke_note"], markup=False)
    if data.get("retry_note"):
        out.print(data["retry_note"], markup=False)
    if data.get("waiting_note"):
        out.print(data["waiting_note"], markup=False)
    if data["error"]:
        out.print(f"[red]{data['error'].get('type')}: {data['error'].get('message')}[/]")
        if data["error"].get("traceback"):
            out.print(data["error"]["traceback"].rstrip(), markup=False, highlight=False)
