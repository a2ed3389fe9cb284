"""How a job record is kept in PostgreSQL: one row of ``jobs``, its columns in
``common.SQL_COLUMNS`` order (the named queries' ``{columns}``), JSON columns as ``jsonb``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ...records import JobRecord
from ...states import State
from ..common import SQL_COLUMNS, dump


def record(row: Sequence[Any]) -> JobRecord:
    values = dict(zip(SQL_COLUMNS, row, strict=True))
    values["state"] = State(values["state"])
    values["payload"] = bytes(values["payload"])
    return JobRecord(**values)


#: Columns of a new job taken as they are from its record.
_PLAIN_COLUMNS = ("id", "task", "queue", "priority", "payload", "run_at", "created_at",
                  "max_retries", "expires_at", "parent_id", "root_id", "workflow_id",
                  "finished_at", "keep_until")  # fmt: skip


def job_columns(jobs: Sequence[JobRecord]) -> dict[str, list[Any]]:
    """New jobs' columns as the insert queries take them: one list per column, built a
    column at a time (cheaper than a dict per job and then lists out of the dicts)."""
    columns = {name: [getattr(job, name) for job in jobs] for name in _PLAIN_COLUMNS}
    columns["state"] = [job.state.value for job in jobs]
    columns["headers"] = [dump(job.headers or None) for job in jobs]  # NULL: the default {}
    columns["error"] = [dump(job.error) for job in jobs]
    return columns


def jsonb(value: Any) -> str:
    """JSON text PostgreSQL's ``jsonb`` takes. It refuses the NUL character (``\\u0000``)
    anywhere, so a NUL in a string or a key is stored as U+FFFD instead: a task whose
    result holds one has it stored, where the refusal made every retry of the batch fail
    and its worker stored nothing more."""
    text = orjson.dumps(value).decode()
    if "\\u0000" not in text:
        return text
    return orjson.dumps(_without_nul(value)).decode()


def jsonb_or_null(value: Any) -> str | None:
    return None if value is None else jsonb(value)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value
