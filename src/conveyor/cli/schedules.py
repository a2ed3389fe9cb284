"""``conveyor scheduler`` and ``conveyor schedules list|add|edit|pause|resume|delete``."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape

from ..control.audit import audited
from ..control.util import age, parse_duration, zoned_text
from ..scheduler import Scheduler, ScheduleView, sync_code_schedules
from ..worker.supervisor import Supervisor
from . import AppRef, cli, console, loglevel_option, setup_logging
from .operate import json_arg
from .output import errors_as_usage, json_option, out, print_json, print_table, when


@cli.command()
@click.option(
    "--lock-ttl",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds a dead leader holds the lead.",
)
@loglevel_option
@click.pass_obj
@errors_as_usage
def scheduler(ref: AppRef, lock_ttl: float, loglevel: str) -> None:
    """Run a scheduler. Run several for failover: one leads, each tick fires once."""
    setup_logging(loglevel)
    app = ref.load()
    runner = Scheduler(app, lock_ttl=lock_ttl)
    sync_code_schedules(app)
    fired, others = runner.survey()
    names = ", ".join(v.schedule.name for v in fired) or "none yet"
    console.print(
        f"[bold]conveyor scheduler[/bold] {runner.id}\n  schedules    {names}\n  lock TTL     {lock_ttl:.0f}s"
        + (f"\n  [yellow]other apps[/yellow]   {escape(others)}" if others else "")
    )
    sys.exit(Supervisor([runner]).run())


@cli.group()
def schedules() -> None:
    """Schedules stored in the backend: edits take effect at the next tick."""


def _when(view: ScheduleView) -> str:
    s = view.schedule
    return f"cron {s.cron} ({s.tz})" if s.cron else f"every {age(s.every)}"


def _next(view: ScheduleView) -> str:
    """The next run in UTC, and in the schedule's own zone when its cron counts in another."""
    s = view.schedule
    local = f" ({zoned_text(view.next_run, s.tz)})" if s.cron and s.tz != "UTC" else ""
    return when(view.next_run) + (local if view.next_run else "")


@schedules.command("list")
@json_option
@click.pass_obj
@errors_as_usage
def list_schedules(ref: AppRef, as_json: bool) -> None:
    """Every schedule, with its last run, the job it produced and its next run."""
    app = ref.load(existing=True)
    views = app.schedules.list()
    if as_json:
        return print_json(views)
    if not views:
        out.print("no schedules")
        return None
    rows = [
        [v.schedule.name, v.schedule.task, v.owner or "-", _when(v),
         "paused" if v.schedule.paused else "active", when(v.last_run_at), v.last_job_id or "-",
         "paused" if v.schedule.paused else _next(v)]
        for v in views
    ]  # fmt: skip
    headers = (
        "name",
        "task",
        "app",
        "when",
        "state",
        "last run (UTC)",
        "last job",
        "next run (UTC)",
    )
    print_table("Schedules", headers, rows)
    return None


def _fields(cron: str | None, every: str | None, tz: str | None, args: str | None, kwargs: str | None,
            queue: str | None, priority: str | None, misfire: str | None) -> dict[str, Any]:  # fmt: skip
    fields: dict[str, Any] = {"cron": cron, "tz": tz, "misfire": misfire,
                              "args": json_arg(args, "--args"), "kwargs": json_arg(kwargs, "--kwargs")}  # fmt: skip
    if every is not None:
        try:
            fields["every"] = parse_duration(every)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
    options: dict[str, Any] = {
        k: v for k, v in (("queue", queue), ("priority", priority)) if v is not None
    }
    if priority is not None and priority.isdigit():
        options["priority"] = int(priority)
    if options:
        fields["options"] = options
    return {k: v for k, v in fields.items() if v is not None}


def _spec_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--cron", help="A cron expression, e.g. '0 1 * * *'."),
        click.option("--every", help="An interval, e.g. 30s, 5m, 1h."),
        click.option("--tz", help="IANA time zone for cron (default UTC)."),
        click.option("--args", help="JSON array of arguments."),
        click.option("--kwargs", help="JSON object of keyword arguments."),
        click.option("--queue"), click.option("--priority"),
        click.option("--misfire", type=click.Choice(["once", "all", "skip"]), help="After downtime: once (default), all, skip."),
    ]):  # fmt: skip
        fn = option(fn)
    return fn


@schedules.command("add")
@click.argument("name")
@click.argument("task")
@_spec_options
@click.pass_obj
@errors_as_usage
def add(ref: AppRef, /, name: str, task: str, **spec: Any) -> None:
    """Add a schedule NAME that enqueues TASK."""
    app = ref.load()
    fields = _fields(**spec)
    with audited(app, "conveyor schedules add", name, task=task, fields=fields):
        schedule = app.schedules.add(name, task, **fields)
    out.print(f"schedule {schedule.name!r} added: {task}")


@schedules.command("edit")
@click.argument("name")
@_spec_options
@click.pass_obj
@errors_as_usage
def edit(ref: AppRef, /, name: str, **spec: Any) -> None:
    """Change a schedule; it takes effect at its next tick."""
    app, fields = ref.load(), _fields(**spec)
    with audited(app, "conveyor schedules edit", name, fields=fields):
        app.schedules.update(name, **fields)
    out.print(f"schedule {name!r} updated")


@schedules.command("pause")
@click.argument("name")
@click.pass_obj
@errors_as_usage
def pause_schedule(ref: AppRef, name: str) -> None:
    app = ref.load()
    with audited(app, "conveyor schedules pause", name):
        app.schedules.pause(name)
    out.print(f"schedule {name!r} paused")


@schedules.command("resume")
@click.argument("name")
@click.pass_obj
@errors_as_usage
def resume_schedule(ref: AppRef, name: str) -> None:
    app = ref.load()
    with audited(app, "conveyor schedules resume", name):
        app.schedules.resume(name)
    out.print(f"schedule {name!r} resumed")


@schedules.command("delete")
@click.argument("name")
@click.pass_obj
@errors_as_usage
def delete(ref: AppRef, name: str) -> None:
    app = ref.load()
    with audited(app, "conveyor schedules delete", name):
        app.schedules.delete(name)
    out.print(f"schedule {name!r} deleted")
