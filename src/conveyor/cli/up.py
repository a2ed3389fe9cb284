"""``conveyor up``: worker groups, the scheduler and the API with its dashboard, one command."""

from __future__ import annotations

import sys

import click

from ..errors import ConveyorError
from ..worker.pools import POOLS
from . import AppRef, cli, console, dead_pids_option, loglevel_option, setup_logging
from .output import errors_as_usage
from .serve import require_web
from .stack import Stack, WorkerGroup

#: The options ``up`` and ``demo`` share: how long to run and where to serve.
seconds_option = click.option(
    "--seconds", type=click.FloatRange(min=0, min_open=True),
    help="Stop gracefully this many seconds after every service is ready (for scripts and CI); default: until Ctrl-C.",
)  # fmt: skip
port_option = click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
                           help="Port of the API and dashboard.")  # fmt: skip


def _groups(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    try:
        for spec in value:
            WorkerGroup.parse(spec)
    except ConveyorError as exc:
        raise click.BadParameter(str(exc)) from None
    return list(value)


@cli.command()
@click.option("-w", "--worker", "workers", multiple=True, callback=_groups, metavar="QUEUES[:N]",
              help="A worker group, e.g. 'video:1' or 'image,document:4'; repeat for more "
                   "(default: the app's worker_groups, else one group for every queue).")  # fmt: skip
@click.option("-P", "--pool", type=click.Choice(POOLS), default="process", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address of the API. Any but loopback needs an API token (conveyor tokens create).")  # fmt: skip
@port_option
@click.option("--no-web", is_flag=True, help="Run no API or dashboard.")
@click.option("--no-scheduler", is_flag=True, help="Run no scheduler (another process runs one).")
@click.option("--max-tasks-per-child", type=click.IntRange(min=1),
              help="process pool: replace a child after this many jobs (default: the app's worker_max_tasks_per_child).")  # fmt: skip
@click.option("--shutdown-timeout", type=float, default=30.0, show_default=True,
              help="Seconds running jobs may take to finish after Ctrl-C or SIGTERM.")  # fmt: skip
@dead_pids_option
@seconds_option
@loglevel_option
@click.pass_obj
@errors_as_usage
def up(ref: AppRef, workers: list[str], pool: str, host: str, port: int, no_web: bool, no_scheduler: bool,
       max_tasks_per_child: int | None, shutdown_timeout: float, dead_pids: bool, seconds: float | None,
       loglevel: str) -> None:  # fmt: skip
    """Run worker groups, the scheduler and the API+dashboard, each in a child process
    restarted if it dies, until Ctrl-C/SIGTERM (running jobs finish first)."""
    setup_logging(loglevel)
    app = ref.load()
    stack = Stack(ref.path or "", app, Stack.groups_for(app, workers), pool=pool, host=host,
                  port=port, web=not no_web, scheduler=not no_scheduler, loglevel=loglevel,
                  worker_options=worker_options(pool, max_tasks_per_child or app.conf.worker_max_tasks_per_child,
                                                shutdown_timeout, dead_pids,
                                                app.conf.worker_max_memory_per_child))  # fmt: skip
    if stack.web:
        stack.auth = web_auth(ref, host)
    stack.check()
    console.print(stack.describe())
    sys.exit(stack.run(seconds=seconds))


def worker_options(pool: str, max_tasks_per_child: int | None, shutdown_timeout: float,
                   dead_pids: bool = True, max_memory_per_child: int | None = None) -> dict[str, object]:  # fmt: skip
    options: dict[str, object] = {"shutdown_timeout": shutdown_timeout, "dead_pids": dead_pids}
    if pool == "process" and max_tasks_per_child:
        options["max_tasks_per_child"] = max_tasks_per_child
    if pool == "process" and max_memory_per_child:
        options["max_memory_per_child"] = max_memory_per_child
    return options


def web_auth(ref: AppRef, host: str) -> str:
    """The API's auth mode, refused (before anything starts) as ``serve`` refuses it."""
    require_web()
    from ..web import TokenStore
    from ..web.service import auth_for

    app = ref.load()
    return auth_for(host, TokenStore(app.backend).exists(), app.command)
