"""Control functions' return values as response models: the one place that knows their
shapes. A control function whose return type changes is adapted here, and only here."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..control import to_json
from ..control.util import in_zone
from ..records import JobRecord, Revocation, WorkerInfo
from ..states import State
from . import models


def summary(record: JobRecord) -> models.JobSummary:
    error = (
        None
        if record.error is None
        else {k: v for k, v in record.error.items() if k != "traceback"}
    )
    return models.JobSummary(
        id=record.id, task=record.task, queue=record.queue, priority=record.priority,
        state=record.state, attempt=record.attempt, max_retries=record.max_retries,
        worker=record.worker, progress=record.progress, error=error, revoke=record.revoke,
        created_at=record.created_at, run_at=record.run_at, started_at=record.started_at,
        finished_at=record.finished_at, expires_at=record.expires_at,
        parent_id=record.parent_id, workflow_id=record.workflow_id,
    )  # fmt: skip


def cancelled(revocation: Revocation, terminate: bool) -> models.Cancelled:
    return models.Cancelled(
        id=revocation.job_id, was=revocation.was, state=revocation.state,
        outcome=revocation.outcome, took_effect=revocation.took_effect,  # type: ignore[arg-type]
        message=revocation.message, terminate=terminate,
    )  # fmt: skip


def detail(described: dict[str, Any]) -> models.JobDetail:
    # Already JSON-shaped (decoded from the store); no to_json walk over the result.
    return models.JobDetail.model_validate(described)


def outcome(record: JobRecord) -> models.JobOutcome:
    return models.JobOutcome(
        id=record.id, state=record.state, done=record.state.finished,
        result=record.result if record.state is State.SUCCESS else None, error=record.error,
    )  # fmt: skip


def queue(stats: Any) -> models.QueueInfo:
    return models.QueueInfo.model_validate(to_json(stats))


def worker(info: WorkerInfo, now: float) -> models.WorkerOut:
    values = {f.name: getattr(info, f.name) for f in fields(info)}
    return models.WorkerOut(**values, heartbeat_age=max(0.0, now - info.last_seen))


def overview(value: Any) -> models.Overview:
    return models.Overview.model_validate(to_json(value))


def doctor(findings: list[Any]) -> models.Doctor:
    found = [models.Finding.model_validate(to_json(f)) for f in findings]
    return models.Doctor(ok=not any(f.severity == "error" for f in found), findings=found)


def schedule(view: Any) -> models.ScheduleOut:
    """A ``ScheduleView``: the schedule's fields and its firing state, side by side."""
    data = to_json(view)
    local = in_zone(view.next_run, view.schedule.tz)
    return models.ScheduleOut.model_validate(
        {
            **data.pop("schedule"),
            **data,
            "app": view.owner,
            "next_run_local": local and local.isoformat(),
        }
    )
