"""``conveyor cancel|retry|pause|resume|purge|enqueue|doctor``."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson
from rich.markup import escape

from .. import control
from ..control.audit import audited, cli_actor, many, many_target
from ..control.util import hide_password, parse_duration
from . import AppRef, cli
from .output import errors_as_usage, json_option, out, print_json


def _filters(
    states: tuple[str, ...], queues: tuple[str, ...], tasks: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "states": list(states) or None,
        "queues": list(queues) or None,
        "tasks": list(tasks) or None,
    }


def _bulk_options(fn: Any) -> Any:
    fn = click.option(
        "--task", "tasks", multiple=True, help="Bulk: jobs of this task (repeatable)."
    )(fn)
    fn = click.option(
        "--queue", "queues", multiple=True, help="Bulk: jobs in this queue (repeatable)."
    )(fn)
    fn = click.option(
        "--state", "states", multiple=True, help="Bulk: jobs in this state (repeatable)."
    )(fn)
    return click.option(
        "--yes", is_flag=True, help="Do not ask for confirmation of a bulk change."
    )(fn)


@cli.command()
@click.argument("job_ids", nargs=-1)
@click.option("--terminate", is_flag=True, help="Also stop the job if it is running.")
@_bulk_options
@json_option
@click.pass_obj
@errors_as_usage
def cancel(ref: AppRef, job_ids: tuple[str, ...], terminate: bool, yes: bool, states: tuple[str, ...],
           queues: tuple[str, ...], tasks: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Cancel jobs by id, or every waiting/running job matching --queue/--task/--state."""
    app = ref.load()
    did = "terminate" if terminate else "cancel"
    if job_ids:
        revocations = []
        for job_id in job_ids:
            with audited(app, f"conveyor cancel ({did})", job_id, did=did):
                revocations.append(control.cancel_job(app, job_id, terminate=terminate))
        if as_json:
            return print_json(revocations)
        for r in revocations:
            out.print(f"{r.job_id} {r.state.value} {r.outcome}: {r.message}", markup=False)
        return None
    filters = _filters(states, queues, tasks)
    if not any(filters.values()):
        raise click.UsageError("give job ids, or --queue/--task/--state to cancel in bulk")
    if not yes:
        click.confirm(
            f"Cancel every waiting{' and running' if terminate else ''} job matching {_show(filters)}?",
            abort=True,
        )
    with audited(app, f"conveyor cancel ({did})", did=did, filters=filters) as change:
        done = control.cancel_where(app, terminate=terminate, **filters)
        change.target, change.detail = many_target(done), {**change.detail, **many(done)}
    return (
        print_json({"cancelled": done}) if as_json else out.print(f"cancelled {len(done)} job(s)")
    )


@cli.command()
@click.argument("job_ids", nargs=-1)
@_bulk_options
@json_option
@click.pass_obj
@errors_as_usage
def retry(ref: AppRef, job_ids: tuple[str, ...], yes: bool, states: tuple[str, ...], queues: tuple[str, ...],
          tasks: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Run FAILURE or REVOKED jobs again (history kept), by id or by --queue/--task/--state."""
    app = ref.load()
    if job_ids:
        records = []
        for job_id in job_ids:
            with audited(app, "conveyor retry", job_id):
                records.append(control.retry_job(app, job_id))
        return (
            print_json(records)
            if as_json
            else out.print("\n".join(f"{r.id} {r.state.value}" for r in records))
        )
    filters = _filters(states, queues, tasks)
    if not any(filters.values()):
        raise click.UsageError("give job ids, or --queue/--task/--state to retry in bulk")
    if not yes:
        click.confirm(f"Retry every FAILURE/REVOKED job matching {_show(filters)}?", abort=True)
    with audited(app, "conveyor retry", filters=filters) as change:
        done = control.retry_where(app, **filters)
        change.target, change.detail = many_target(done), {**change.detail, **many(done)}
    return print_json({"retried": done}) if as_json else out.print(f"retried {len(done)} job(s)")


def _show(filters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={','.join(v)}" for k, v in filters.items() if v)


@cli.command()
@click.argument("queue")
@click.pass_obj
@errors_as_usage
def pause(ref: AppRef, queue: str) -> None:
    """Stop every worker from starting jobs of QUEUE (persisted; running jobs go on)."""
    app = ref.load()
    with audited(app, "conveyor pause", queue):
        warning = control.pause_queue(app, queue)
    out.print(f"queue {queue!r} paused: workers start none of its jobs until `resume {queue}`")
    if warning:  # plain text: a pipe or a narrow terminal gets it whole
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@click.argument("queue")
@click.pass_obj
@errors_as_usage
def resume(ref: AppRef, queue: str) -> None:
    """Let workers take jobs of QUEUE again."""
    app = ref.load()
    with audited(app, "conveyor resume", queue):
        control.resume_queue(app, queue)
    out.print(f"queue {queue!r} resumed")


@cli.command()
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@errors_as_usage
def purge(ref: AppRef, queue: str, yes: bool) -> None:
    """Cancel every waiting job of QUEUE (running jobs are left alone)."""
    app = ref.load()
    if not yes:
        click.confirm(
            f"Cancel every waiting job in {queue!r} on {hide_password(app.conf.backend_url)}?",
            abort=True,
        )
    with audited(app, "conveyor purge", queue) as change:
        change.detail["count"] = purged = control.purge_queue(app, queue)
    out.print(f"purged {purged} waiting job(s) from {queue!r}")


def json_arg(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{what} is not valid JSON ({exc}); e.g. --args '[1, \"a\"]'"
        ) from None


@cli.command()
@click.argument("task")
@click.option("--args", "args_json", help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--queue", help="Override the task's queue.")
@click.option("--priority", help="0-9 or low/normal/high/critical (any case).")
@click.option("--countdown", help="Start no sooner than this from now, e.g. 30s, 5m.")
@json_option
@click.pass_obj
@errors_as_usage
def enqueue(ref: AppRef, task: str, args_json: str | None, kwargs_json: str | None, queue: str | None,
            priority: str | None, countdown: str | None, as_json: bool) -> None:  # fmt: skip
    """Queue a job for TASK (a name the app registers)."""
    args, kwargs = json_arg(args_json, "--args"), json_arg(kwargs_json, "--kwargs")
    try:
        delay = None if countdown is None else parse_duration(countdown)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    job = control.enqueue_by_name(
        ref.load(), task, args, kwargs, queue=queue, priority=priority, countdown=delay,
        headers={"submitted_by": cli_actor()},  # as the API's submits: on the job itself
    )  # fmt: skip
    record = job.record()
    if as_json:
        return print_json({"id": job.id, "queue": record.queue, "state": record.state})
    out.print(f"{job.id} {record.state.value} in queue {record.queue!r}")
    return None


@cli.command()
@click.pass_obj
@errors_as_usage
def migrate(ref: AppRef) -> None:
    """Create or upgrade the backend's tables (PostgreSQL) or layout (Redis: an earlier
    version's job-id set into the paged id index, its ready sets into due pages); safe to
    run from many places."""
    app = ref.load()
    run = getattr(app.backend, "migrate", None)
    if run is None:
        out.print(
            f"nothing to migrate: {app.conf.backend_url.split(':')[0]} sets itself up on first use"
        )
        return
    applied = run()
    out.print(
        f"applied migration(s) {', '.join(map(str, applied))}"
        if applied
        else "the schema is up to date"
    )


@cli.command()
@click.option("--strict", is_flag=True, help="Exit non-zero on warnings too.")
@json_option
@click.pass_obj
@errors_as_usage
def doctor(ref: AppRef, strict: bool, as_json: bool) -> None:
    """Explain why work is stuck. Exit 0 when healthy, 1 when a check fails."""
    app = ref.load(existing=True)
    findings = control.diagnose(app)
    failed = [f for f in findings if f.severity == "error" or strict]
    # The store named in full: a relative SQLite path read from another directory is
    # another file, the first thing to rule out when doctor and the workers disagree.
    store = hide_password(control.absolute_url(app.conf.backend_url))
    if as_json:
        print_json({"healthy": not failed, "store": store, "findings": findings})
    elif not findings:
        out.print(
            f"[green]healthy[/]: {escape(store)} answers, and every queue with waiting jobs has a worker"
        )
    else:
        out.print(f"[dim]store {escape(store)}[/]")
    for f in [] if as_json else findings:
        colour = "red" if f.severity == "error" else "yellow"
        # Escaped: "[check]" and the problem's own text are not rich markup.
        out.print(
            f"[{colour}]{f.severity}[/] {escape(f'[{f.check}] {f.problem}')}\n  [bold]fix:[/] {escape(f.fix)}"
        )
    sys.exit(1 if failed else 0)
