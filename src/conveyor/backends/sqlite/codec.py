"""How a job record is kept in SQLite: one row of ``jobs``, its columns in ``common.SQL_COLUMNS``
order (the named queries' ``{columns}``), structured fields as JSON text."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ...records import JobRecord
from ...states import State
from ..common import SQL_COLUMNS

_JSON_COLUMNS = {"progress", "result", "error", "attempts", "headers"}
SELECT = f"SELECT {', '.join(SQL_COLUMNS)} FROM jobs"


def record(row: sqlite3.Row | tuple[Any, ...]) -> JobRecord:
    values = dict(zip(SQL_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        if values[name] is not None:
            values[name] = orjson.loads(values[name])
    values["state"] = State(values["state"])
    values["headers"] = values["headers"] or {}
    values["attempts"] = values["attempts"] or []
    return JobRecord(**values)
