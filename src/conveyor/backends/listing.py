"""The job list over SQL: keyset pages that read an index in id order and stop early.

A page with filters used to be one ``WHERE ... ORDER BY id DESC LIMIT n``, and the
planner (SQLite's above all, which keeps no per-value statistics) often walked the whole
primary key looking for a rare state. Here one filter *drives* the page: each of its
values is read from its ``(column, id)`` index in id order (newest first, or oldest
first: the same index read the other way), and the other filters are
checked on those rows only. With ``JobQuery.scan`` a page examines at most that many
rows: a first, index-only read finds the id where those rows end, and the page reads no
further. When they run out before the page is full, the page ends early and says where
the next one resumes, so a rare text or an empty time range never reads a million rows
in one request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..records import JobQuery

#: Filters with an index on (column, id), in the order one is picked to drive a page:
#: the likeliest to be selective first.
DRIVERS = (("worker", "workers"), ("task", "tasks"), ("state", "states"), ("queue", "queues"))


@dataclass(frozen=True)
class Dialect:
    mark: str  # the driver's placeholder
    contains: str  # "the payload holds this text", with one placeholder
    table: str = "jobs"
    #: Name the index each read takes (``jobs_<column>``): SQLite's planner keeps no
    #: per-value statistics, so left alone it walks the primary key for a rare state.
    name_index: bool = False

    def reading(self, column: str | None) -> str:
        """The FROM clause reading the jobs by ``column``'s index (None: the primary key)."""
        if column is None or not self.name_index:
            return self.table
        return f"{self.table} INDEXED BY jobs_{column}"


def _driver(query: JobQuery) -> tuple[str | None, list[str]]:
    for column, attr in DRIVERS:
        values = getattr(query, attr)
        if values is not None:
            return column, [str(v) for v in values]
    return None, []


def _order(query: JobQuery) -> str:
    return "ASC" if query.oldest_first else "DESC"


def _below(query: JobQuery, d: Dialect) -> tuple[str, list[Any]]:
    """The cursors' clause: ids below ``before``, above ``after``."""
    clauses = [(c, v) for c, v in (("<", query.before), (">", query.after)) if v is not None]
    return "".join(f" AND id {c} {d.mark}" for c, _ in clauses), [v for _, v in clauses]


def window(query: JobQuery, d: Dialect) -> tuple[str, list[Any]] | None:
    """With ``query.scan``: how many rows the page may examine (up to ``scan``) and the
    last id among them (the smallest, or the largest oldest first), read from the
    driving index alone. None without a bound."""
    column, values = _driver(query)
    others = [attr for name, attr in DRIVERS if name != column and getattr(query, attr) is not None]
    filtered = [query.created_after, query.created_before, query.text]
    if query.scan is None or not (others or any(f is not None for f in filtered)):
        return None  # no bound, or none needed: every row the driver yields matches
    m, order = d.mark, _order(query)
    below, below_params = _below(query, d)
    if column is None:
        text = f"SELECT id FROM {d.reading(None)} WHERE true{below} ORDER BY id {order} LIMIT {m}"
        params = [*below_params, query.scan]
    else:
        branch = (
            f"SELECT id FROM (SELECT id FROM {d.reading(column)} WHERE {column} = {m}{below} "
            f"ORDER BY id {order} LIMIT {m}) AS b"
        )
        params = [p for v in values for p in (v, *below_params, query.scan)]
        if len(values) == 1:
            text = branch
        else:
            text = f"SELECT id FROM ({' UNION ALL '.join([branch] * len(values))}) AS u "
            text += f"ORDER BY id {order} LIMIT {m}"
            params.append(query.scan)
    last = "max" if query.oldest_first else "min"
    return f"SELECT count(*), {last}(id) FROM ({text}) AS w", params


def select(query: JobQuery, columns: str, d: Dialect, low: str | None) -> tuple[str, list[Any]]:
    """The page: up to ``query.limit`` matches, newest first (or oldest), with ids from
    the cursor to ``low`` (the end of the window, when the bound cut it)."""
    m, order = d.mark, _order(query)
    column, values = _driver(query)
    where: list[str] = []
    params: list[Any] = []
    for name, attr in DRIVERS:
        wanted = getattr(query, attr)
        if wanted is not None and name != column:
            where.append(f"{name} IN ({', '.join([m] * len(wanted))})")
            params += [str(v) for v in wanted]
    for clause, value in (
        (f"id <= {m}" if query.oldest_first else f"id >= {m}", low),
        (f"id < {m}", query.before),
        (f"id > {m}", query.after),
        (f"created_at >= {m}", query.created_after),
        (f"created_at < {m}", query.created_before),
        (d.contains, None if query.text is None else query.text.encode()),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if column is None:
        filters = f"WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {columns} FROM {d.table} {filters} ORDER BY id {order} LIMIT {m}", [
            *params,
            query.limit,
        ]
    # One branch per value of the driving filter, each read in id order from its index.
    branch = (
        f"SELECT id FROM (SELECT id FROM {d.reading(column)} "
        f"WHERE {' AND '.join([f'{column} = {m}', *where])} ORDER BY id {order} LIMIT {m}) AS b"
    )
    text = (
        f"SELECT {columns} FROM {d.table} WHERE id IN ({' UNION ALL '.join([branch] * len(values))}) "
        f"ORDER BY id {order} LIMIT {m}"
    )
    branch_params = [p for v in values for p in (v, *params, query.limit)]
    return text, [*branch_params, query.limit]


def page(
    query: JobQuery, columns: str, d: Dialect, read: Callable[[str, list[Any]], list[Any]]
) -> tuple[list[Any], str | None]:
    """Run a page with ``read(sql, params) -> rows``: its rows, and where the next page
    resumes when the bound cut it short (see ``Backend.list_page``)."""
    low = None
    bound = window(query, d)
    if bound is not None:
        examined, lowest = read(*bound)[0]
        if query.scan is not None and examined >= query.scan:
            low = lowest
    rows = read(*select(query, columns, d, low))
    return rows, low if low is not None and len(rows) < query.limit else None
