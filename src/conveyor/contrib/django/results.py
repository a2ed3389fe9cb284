"""A Conveyor job record as Django's ``TaskResult``."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from conveyor import State
from conveyor.records import JobRecord
from conveyor.serialization import decode_payload

from .compat import FAILED, READY, RUNNING, SUCCESSFUL, AnyTask, TaskError, TaskResult

#: Conveyor's states as Django's statuses. A job waiting for a retry is READY ("ready to
#: be executed again"); a revoked one FAILED ("unable to start"), with a JobRevoked error.
STATUS = {
    State.PENDING: READY,
    State.SCHEDULED: READY,
    State.RETRY: READY,
    State.STARTED: RUNNING,
    State.SUCCESS: SUCCESSFUL,
    State.FAILURE: FAILED,
    State.REVOKED: FAILED,
}
#: The history's state of a manual retry (``conveyor retry``): not an attempt.
REQUEUED = "REQUEUED"
#: Header holding what Django's side of a job needs: {"backend", "priority"}.
HEADER = "django"


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def exception_path(error: dict[str, Any]) -> str:
    """The import path of an error's class, as ``TaskError.exception_class_path`` wants it."""
    if error.get("path"):
        return str(error["path"])
    name = str(error.get("type") or "Exception")
    if name == "Revoked":
        return "conveyor.errors.JobRevoked"
    return f"builtins.{name}" if isinstance(getattr(builtins, name, None), type) else name


def errors_of(record: JobRecord) -> list[TaskError]:
    """One ``TaskError`` per failed attempt (the history keeps no traceback: its message
    stands in), the last with the stored traceback."""
    found = [
        TaskError(exception_class_path=exception_path(entry["error"]),
                  traceback=str(entry["error"].get("message") or ""))
        for entry in record.attempts if entry.get("error")
    ]  # fmt: skip
    error = record.error
    if error and record.state.finished:
        last = TaskError(
            exception_class_path=exception_path(error),
            traceback=str(error.get("traceback") or error.get("message") or ""),
        )
        final = record.attempts[-1] if record.attempts else {}
        if found and final.get("error") and final.get("attempt") == record.attempt:
            found[-1] = last  # the same attempt, now with its traceback
        else:
            found.append(last)
    return found


def worker_ids(record: JobRecord) -> list[str]:
    """The worker of every attempt, oldest first (the running one's included)."""
    ids = [
        str(entry["worker"])
        for entry in record.attempts
        if entry.get("worker") and entry.get("state") != REQUEUED
    ]
    if record.state is State.STARTED and record.worker:
        ids.append(record.worker)
    return ids


def to_result(record: JobRecord, task: AnyTask, alias: str) -> TaskResult[Any]:
    """``record`` as the ``TaskResult`` of ``task`` (already adjusted with ``.using``)."""
    try:
        args, kwargs = decode_payload(record.payload)
    except ValueError:
        args, kwargs = [], {}
    started = [e["started_at"] for e in record.attempts if e.get("started_at") is not None]
    first_start = started[0] if started else record.started_at
    result: TaskResult[Any] = TaskResult(
        task=task,
        id=record.id,
        status=STATUS[record.state],
        enqueued_at=_time(record.created_at),
        started_at=_time(first_start),
        last_attempted_at=_time(record.started_at),
        finished_at=_time(record.finished_at) if record.state.finished else None,
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=errors_of(record),
        worker_ids=worker_ids(record),
    )
    if record.state is State.SUCCESS:
        object.__setattr__(result, "_return_value", record.result)
    return result
