"""The ``conveyor`` command. It parses and delegates: nothing here runs jobs itself."""

from __future__ import annotations

import logging
import os
import sys

import click
from rich.console import Console
from rich.logging import RichHandler

from ..app import App
from ..control.doctor import missing_store
from ..errors import ConveyorError
from ..loader import load_app
from ..version import __version__

console = Console(stderr=True)
if not console.is_terminal:  # a log file gets whole lines, and tables wider than 80 columns
    console.soft_wrap = True
    if "COLUMNS" not in os.environ:
        console.width = 160


#: The demo's app, as -A takes it (``conveyor demo`` runs it): what advice names for it.
DEMO_APP = "conveyor.demo.tasks:app"


class AppRef:
    """The ``-A`` value, loaded on first use so ``--help`` works without an app."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._app: App | None = None

    def load(self, existing: bool = False) -> App:
        """The app. ``existing``: for a read-only command, refuse a store that does not
        exist (a SQLite file, a PostgreSQL schema), rather than create an empty one to
        read nothing from."""
        if self._app is None:
            if not self.path:
                raise click.UsageError(
                    "no app given: name the module that creates your App before the command "
                    "(conveyor -A myproject.tasks:app ...) or set CONVEYOR_APP; the demo's app "
                    f"is {DEMO_APP} (conveyor -A {DEMO_APP} doctor)"
                )
            try:
                self._app = load_app(self.path)
            except ConveyorError as exc:
                raise click.ClickException(str(exc)) from exc
        if existing and (problem := missing_store(self._app)):
            raise click.ClickException(problem)
        return self._app


#: The -l/--loglevel option of every long-running command.
loglevel_option = click.option(
    "-l",
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
#: Whether a worker returns at once the jobs of this host's workers whose process is gone
#: (``worker/deadpids.py``, Linux); ``worker`` and ``up`` take it.
dead_pids_option = click.option(
    "--dead-pids/--no-dead-pids",
    envvar="CONVEYOR_DEAD_PIDS",
    default=True,
    show_default=True,
    help="Return at once the jobs of a worker of this host whose process is gone (Linux), "
    "instead of after their lease; --no-dead-pids (env CONVEYOR_DEAD_PIDS=0) where /proc "
    "is not to be trusted.",
)


#: The name of the handler ``setup_logging`` puts on the root logger (integrations look
#: for it: Django's own console handler stands aside while it prints).
LOG_HANDLER = "conveyor.cli"


def setup_logging(level: str, source: str | None = None) -> None:
    """Log to stderr; ``source`` names the process on each line (a child of ``up``). On a
    terminal, rich's colours and wrapping; elsewhere (a file, journald, a container's log)
    one plain line per record with its date, level and logger, never wrapped."""
    prefix = f"[{source}] " if source else ""
    handler: logging.Handler
    if console.is_terminal:
        handler = RichHandler(
            console=console, show_path=False, rich_tracebacks=True, log_time_format="[%X]"
        )
        fmt = f"{prefix}%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = f"%(asctime)s %(levelname)-7s {prefix}%(name)s: %(message)s"
    handler.set_name(LOG_HANDLER)
    logging.basicConfig(level=level.upper(), handlers=[handler], format=fmt, force=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-A", "--app", "app_path", envvar="CONVEYOR_APP", metavar="MODULE:APP",
              help="The app to use, as package.module:app (env CONVEYOR_APP).")  # fmt: skip
@click.version_option(__version__, prog_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, app_path: str | None) -> None:
    """Conveyor: a task queue with everything around it built in."""
    ctx.obj = AppRef(app_path)


def main() -> None:
    try:
        cli(prog_name="conveyor")
    except ConveyorError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


from . import audit, demo, inspect, operate, schedules, serve, tokens, up, worker  # noqa: E402,F401 - registers the subcommands
