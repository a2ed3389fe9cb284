"""Printing results: tables for people, plain columns in a pipe, ``--json`` for scripts."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import orjson
from rich import box
from rich.console import Console
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

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


#: A column that gives way is shortened (with an ellipsis) down to this width, no further.
MIN_SHRUNK = 24
#: Between two columns (a space and an invisible divider): a table's only overhead.
GAP = 2


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    shrink: Collection[str] = (),
) -> None:
    """Rows as a table that never wraps or cuts an id or a name.

    In a pipe (stdout not a terminal): plain columns aligned with spaces, one row a line,
    without title, box drawing or colour, every cell whole (an empty one as ``-``), for
    grep and awk. On a terminal: a table whose columns are as wide as their longest cell;
    when that is wider than the terminal, only the ``shrink`` columns (free text such as an
    error) give way, shortened with an ellipsis, and if the rest still does not fit the
    table is printed wider than the terminal (which wraps the lines, never the cells).
    Plain ``str`` cells are never read as rich markup (an error message may hold ``[...]``);
    pass a ``Text`` for colour.
    """
    cells = [[Text(c.replace("\n", " ")) if isinstance(c, str) else c for c in row] for row in rows]
    widths = [max([len(h), *(row[i].cell_len for row in cells)]) for i, h in enumerate(headers)]
    if not out.is_terminal:
        for line in [[Text(h) for h in headers], *cells]:
            padded = [t.plain or "-" for t in line]
            click.echo("  ".join(p.ljust(w) for p, w in zip(padded, widths, strict=True)).rstrip())
        return
    widths = _give_way(widths, [h in shrink for h in headers], out.width - GAP * (len(headers) - 1))
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1), collapse_padding=True, show_edge=False)  # fmt: skip
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, width=width, no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*row)
    # Rendered at its own width, not the terminal's: rich would squeeze every column to fit.
    width = sum(widths) + GAP * (len(headers) - 1)
    out.print(
        Segments(out.render(table, out.options.update_width(max(width, out.width)))), crop=False
    )


def _give_way(widths: list[int], shrinkable: list[bool], room: int) -> list[int]:
    """Narrow the shrinkable columns, the widest first, until the table fits ``room``."""
    widths = list(widths)
    excess = sum(widths) - room
    while excess > 0:
        candidates = [i for i, ok in enumerate(shrinkable) if ok and widths[i] > MIN_SHRUNK]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        cut = min(excess, widths[widest] - MIN_SHRUNK)
        widths[widest] -= cut
        excess -= cut
    return widths


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
