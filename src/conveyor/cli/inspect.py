"""``conveyor inspect queues|workers|jobs|job ID``."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.table import Table

from .. import control
from ..control.util import age, parse_duration
from . import AppRef, cli
from .output import errors_as_usage, json_option, out, print_json, seconds, when


@cli.group()
def inspect() -> None:
    """Look at queues, workers and jobs."""


@inspect.command("queues")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_queues(ref: AppRef, as_json: bool) -> None:
    """Depth by state, oldest waiting age, consumers, throughput and runtimes."""
    stats = control.queue_stats(ref.load())
    if as_json:
        return print_json(stats)
    table = Table(title="Queues", title_justify="left")
    for column in (
        "queue",
        "waiting",
        "running",
        "oldest",
        "consumers",
        "done/min (5m)",
        "runtime p50/p95 (5m)",
        "failed (5m)",
    ):
        table.add_column(column)
    for q in stats:
        w = q.windows["5m"]
        name = f"{q.name} [yellow](paused)[/]" if q.paused else q.name
        table.add_row(name, str(q.waiting), str(q.running), age(q.oldest_waiting_age),
                      ", ".join(q.consumers) or "[red]none[/]", f"{w.per_minute:.1f}",
                      f"{seconds(w.runtime_p50)} / {seconds(w.runtime_p95)}", str(w.failed))  # fmt: skip
    out.print(table)
    return None


@inspect.command("workers")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_workers(ref: AppRef, as_json: bool) -> None:
    """The live workers: queues, pool, concurrency, current jobs, last heartbeat."""
    app = ref.load()
    found = control.workers(app)
    if as_json:
        return print_json(found)
    now = app.backend.now()
    table = Table(title="Workers", title_justify="left")
    for column in (
        "name",
        "host/pid",
        "queues",
        "pool",
        "running",
        "last heartbeat",
        "up",
        "version",
    ):
        table.add_column(column)
    for w in found:
        table.add_row(w.name, f"{w.host}/{w.pid}", ", ".join(w.queues), f"{w.pool} x {w.concurrency}",
                      str(len(w.running)), f"{age(now - w.last_seen)} ago", age(now - w.started_at), w.version)  # fmt: skip
    out.print(table if found else "[yellow]no live workers[/]")
    return None


@inspect.command("jobs")
@click.option(
    "--state",
    "states",
    multiple=True,
    help="PENDING, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED (repeatable).",
)
@click.option("--queue", "queues", multiple=True, help="Repeatable.")
@click.option("--task", "tasks", multiple=True, help="Repeatable.")
@click.option("--since", help="Created within this long, e.g. 15m, 2h, 1d.")
@click.option("--until", "until_", help="Created longer ago than this, e.g. 1h.")
@click.option("--text", help="Text that appears in the job's arguments.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor printed by the previous page.")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_jobs(ref: AppRef, states: tuple[str, ...], queues: tuple[str, ...], tasks: tuple[str, ...],
                 since: str | None, until_: str | None, text: str | None, limit: int, cursor: str | None,
                 as_json: bool) -> None:  # fmt: skip
    """Jobs, newest first, filtered and a page at a time."""
    now = time.time()
    try:
        after = None if since is None else now - parse_duration(since)
        before = None if until_ is None else now - parse_duration(until_)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    page = control.list_jobs(ref.load(), states=list(states), queues=list(queues), tasks=list(tasks),
                             created_after=after, created_before=before, text=text, cursor=cursor, limit=limit)  # fmt: skip
    if as_json:
        return print_json(
            {
                "jobs": [control.to_json(j) | {"payload": None} for j in page.jobs],
                "next_cursor": page.next_cursor,
            }
        )
    table = Table(title="Jobs", title_justify="left")
    for column in ("id", "task", "queue", "state", "try", "created", "detail"):
        table.add_column(column, overflow="fold")
    for j in page.jobs:
        detail = (
            f"{(j.error or {}).get('type')}: {(j.error or {}).get('message')}"
            if j.error
            else (
                f"{j.progress.get('percent')}% {j.progress.get('message') or ''}"
                if j.progress and j.state == "STARTED"
                else ""
            )
        )
        table.add_row(
            j.id, j.task, j.queue, j.state.value, str(j.attempt), when(j.created_at), detail
        )
    out.print(table)
    if page.next_cursor:
        out.print(f"more: --cursor {page.next_cursor}")
    return None


@inspect.command("job")
@click.argument("job_id")
@json_option
@click.pass_obj
@errors_as_usage
def inspect_job(ref: AppRef, job_id: str, as_json: bool) -> None:
    """One job in full: arguments, result, error with traceback, attempts, timings."""
    data = control.describe_job(ref.load(), job_id)
    if as_json:
        return print_json(data)
    out.print(
        f"[bold]{data['task']}[/] {data['id']}  [bold]{data['state']}[/]  queue {data['queue']}  priority {data['priority']}"
    )
    out.print(f"args {data['args']!r}  kwargs {data['kwargs']!r}")
    out.print(f"created {when(data['created_at'])}  started {when(data['started_at'])}  finished {when(data['finished_at'])}"
              f"  waited {seconds(data['timings']['waited'])}  ran {seconds(data['timings']['ran'])}")  # fmt: skip
    if data["worker"]:
        out.print(f"worker {data['worker']}")
    if data["progress"]:
        out.print(f"progress {data['progress']}")
    _print_outcome(data)
    if data["attempts"]:
        table = Table(title="Attempts", title_justify="left")
        for column in ("#", "state", "worker", "started", "ran", "error"):
            table.add_column(column)
        for a in data["attempts"]:
            ran = None if a["started_at"] is None else a["finished_at"] - a["started_at"]
            error = f"{a['error']['type']}: {a['error']['message'] or ''}" if a.get("error") else ""
            table.add_row(
                str(a["attempt"]),
                a["state"],
                a["worker"] or "-",
                when(a["started_at"]),
                seconds(ran),
                error,
            )
        out.print(table)
    return None


def _print_outcome(data: dict[str, Any]) -> None:
    """The result or error of ``inspect job``, and what became of a revoke."""
    if data["state"] == "SUCCESS":
        out.print(f"result {data['result']!r}")
    if data["revoke_note"]:
        out.print(data["revoke_note"], markup=False)
    if data["error"]:
        out.print(f"[red]{data['error'].get('type')}: {data['error'].get('message')}[/]")
        if data["error"].get("traceback"):
            out.print(data["error"]["traceback"].rstrip(), markup=False, highlight=False)
