"""Celery's ``celery worker`` options that mean something to ``conveyor worker``, so a
start script (``celery -A proj worker -Q q -P prefork -O fair -n w1@%h -B``) carries
over with ``celery`` changed to ``conveyor``. Options with no meaning here are not
accepted: click names them as unknown."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

import click

#: Celery's pool names for Conveyor's.
POOL_ALIASES = {"prefork": "process", "threads": "thread"}
F = TypeVar("F", bound=Callable[..., Any])


def celery_flags(command: F) -> F:
    """Add Celery's worker options to a click command."""
    options = [
        click.option("-O", "optimization", type=click.Choice(["fair", "default"]),
                     help="Celery's -O fair: the same as --prefetch 0."),
        click.option("-B", "--beat", is_flag=True,
                     help="Run the scheduler in this process too (Celery's embedded beat)."),
        click.option("-E", "--task-events", is_flag=True,
                     help="Accepted from Celery's scripts: Conveyor always stores job events."),
        click.option("--without-gossip", is_flag=True, hidden=True),
        click.option("--without-mingle", is_flag=True, hidden=True),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def node_name(name: str | None) -> str | None:
    """Celery's ``-n`` placeholders: ``%h`` host name, ``%n`` its first part, ``%d`` the rest."""
    if name is None or "%" not in name:
        return name
    host = socket.gethostname()
    short, _, domain = host.partition(".")
    return name.replace("%h", host).replace("%n", short).replace("%d", domain)
