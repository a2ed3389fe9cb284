"""``conveyor worker``."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from ..control import absolute_url
from ..control.util import hide_password
from ..errors import ConveyorError
from ..names import check_queue_name
from ..scheduler import Scheduler
from ..worker import Worker
from ..worker.pools import POOLS
from ..worker.pools.process import START_METHODS, ProcessPool, default_start_method
from ..worker.supervisor import Supervisor
from . import AppRef, cli, console, dead_pids_option, loglevel_option, setup_logging
from .celery_flags import POOL_ALIASES, celery_flags, node_name

if TYPE_CHECKING:
    from ..app import App

#: The banner's line for a worker that does not return dead workers' jobs by their pid.
DEAD_PIDS_OFF = (
    "  dead pids    not judged (--no-dead-pids): a dead worker's jobs wait for their lease\n"
)


def _queue_list(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> list[str] | None:
    if value is None:
        return None
    try:
        return [check_queue_name(q.strip(), "-Q") for q in value.split(",")]
    except ConveyorError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@click.option(
    "-Q",
    "--queues",
    callback=_queue_list,
    help="Comma-separated queues to consume (default: every queue the app declares).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Jobs at once (default: CPUs for process, 8 thread, 100 async).",
)
@click.option(
    "-P", "--pool", type=click.Choice([*POOLS, *POOL_ALIASES]), default="process", show_default=True
)
@click.option("-n", "--name", help="Worker name shown in the registry (default host:pid).")
@loglevel_option
@click.option(
    "--burst", is_flag=True, help="Drain the queues, then exit 0 (for scripts and tests)."
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    default=None,
    help="Jobs claimed beyond concurrency, ready to start. Default: auto (up to 4 per slot "
    "while jobs take under 50 ms, none once they take over 200 ms). 0 for strictly fair dispatch.",
)
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(min=1),
    help="process pool: replace a child after this many jobs.",
)
@click.option(
    "--max-memory-per-child",
    type=click.IntRange(min=1),
    help="process pool: replace a child whose resident memory exceeds this many KiB "
    "(default: the app's worker_max_memory_per_child).",
)
@click.option(
    "--start-method",
    type=click.Choice(START_METHODS),
    help=f"process pool start method (default {default_start_method()}; fork: Linux only).",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds running jobs may take to finish after SIGTERM.",
)
@dead_pids_option
@celery_flags
@click.pass_obj
def worker(ref: AppRef, queues: list[str] | None, concurrency: int | None, pool: str, name: str | None, loglevel: str,
           burst: bool, prefetch: int | None, max_tasks_per_child: int | None, max_memory_per_child: int | None,
           start_method: str | None, shutdown_timeout: float, dead_pids: bool, optimization: str | None, beat: bool,
           task_events: bool, without_gossip: bool, without_mingle: bool) -> None:  # fmt: skip
    """Run a worker: claim jobs from the queues and run them.

    Celery's -E, --without-gossip and --without-mingle are accepted so start scripts carry
    over: Conveyor always stores job events and has no gossip or mingle to turn off."""
    setup_logging(loglevel)
    app = ref.load()
    pool, name = POOL_ALIASES.get(pool, pool), node_name(name)
    if optimization == "fair" and prefetch is None:
        prefetch = 0
    options = {}
    if pool == "process":
        options = {"start_method": start_method,
                   "max_memory_per_child": max_memory_per_child or app.conf.worker_max_memory_per_child,
                   "max_tasks_per_child": max_tasks_per_child or app.conf.worker_max_tasks_per_child}  # fmt: skip
    w = Worker(app, queues=queues, pool=pool, concurrency=concurrency, name=name, prefetch=prefetch,
               burst=burst, shutdown_timeout=shutdown_timeout, dead_pids=dead_pids, **options)  # fmt: skip
    console.print(banner(w, beat))
    code = Supervisor([w, Scheduler(app)] if beat else [w]).run()
    logging.getLogger("conveyor.worker").info(
        "worker stopped: %s",
        ", ".join(f"{k} {v}" for k, v in w.counts.items() if v) or "no jobs run",
    )
    sys.exit(code)


def banner(w: Worker, beat: bool = False) -> str:
    tasks = (
        "\n".join(f"    {name}" for name in sorted(w.app.tasks))
        or "    (none registered: check -A)"
    )
    start = f", {w.pool.start_method}" if isinstance(w.pool, ProcessPool) else ""
    return (
        f"[bold]conveyor worker[/bold] {w.name}  id {w.id}\n"
        f"  backend      {hide_password(absolute_url(w.app.conf.backend_url))}\n"
        f"  queues       {', '.join(w.queues)}\n"
        f"  pool         {w.pool_kind} x {w.concurrency}{start} ({w.prefetch_text})\n"
        f"  mode         {'burst (exit when drained)' if w.burst else 'run until stopped'}\n"
        f"{'' if w.dead_pids else DEAD_PIDS_OFF}"
        f"{_schedules_line(w.app, beat)}"
        f"  tasks\n{tasks}"
    )  # fmt: skip


def _schedules_line(app: App, beat: bool) -> str:
    """The schedules the app declares in code, and who fires them: a worker alone does
    not, and a periodic task that never runs should not be a mystery."""
    try:
        names = sorted(app.declared_schedules())
    except ConveyorError:
        return ""  # the scheduler says what is wrong with them, where it starts
    if not names:
        return ""
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    who = (
        "fired by this worker's scheduler (--beat)"
        if beat
        else f"not fired by a worker: run a scheduler ({app.command} scheduler), add --beat, "
        f"or start everything with {app.command} up"
    )
    return f"  schedules    {escape(listed)}: {who}\n"
