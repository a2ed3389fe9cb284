"""Printing results: rich tables for people, ``--json`` for scripts (on stdout)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console

from ..control import to_json
from ..errors import ConveyorError

out = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
    )(fn)


def print_json(data: Any) -> None:
    click.echo(orjson.dumps(to_json(data), option=orjson.OPT_INDENT_2).decode())


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def errors_as_usage(fn: F) -> F:
    """Turn a ConveyorError (bad id, unknown task, bad input) into a clean CLI error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConveyorError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]
