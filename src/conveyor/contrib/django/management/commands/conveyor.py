"""``manage.py conveyor <subcommand>``: Conveyor's whole command line (worker, scheduler,
up, serve, inspect, doctor, cancel, retry, schedules, ...) on this project's app.

The arguments go to the ``conveyor`` command unchanged, with ``-A`` set to the app built
from the settings (``conveyor.contrib.django.app``), which every worker child imports, so
it sets Django up whatever the start method. Django's connections are closed first, so a
forked child never shares one with its parent."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connections

from conveyor.cli import cli, console
from conveyor.errors import ConveyorError

from ...runtime import APP_PATH


class Command(BaseCommand):
    help = (
        "Conveyor's command line on this project's app: manage.py conveyor worker | "
        "scheduler | up | serve | inspect | doctor | ... (manage.py conveyor --help)"
    )

    def run_from_argv(self, argv: list[str]) -> None:
        # Not Django's argument parser: every option is the conveyor command's.
        prog = f"{os.path.basename(argv[0])} {argv[1]}"
        sys.exit(run(argv[2:], prog))

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:  # call_command("conveyor", ...)
        code = run(list(args), "conveyor")
        if code:
            sys.exit(code)


def run(args: list[str], prog: str) -> int:
    """Run the conveyor command with ``args``; its exit code."""
    connections.close_all()
    os.environ["CONVEYOR_APP"] = APP_PATH  # children and subprocesses find the same app
    try:
        cli.main(args=["-A", APP_PATH, *args], prog_name=prog, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ConveyorError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    return 0
