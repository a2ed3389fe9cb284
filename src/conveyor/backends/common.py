"""Small pieces every backend shares: attempt log entries and standard error records."""

from __future__ import annotations

from typing import Any

from ..records import JobQuery, JobRecord
from ..states import State
from .base import not_redelivered_error, worker_lost_error

#: The attempt-history state of a manual retry.
REQUEUED = "REQUEUED"


def attempt_entry(
    job: JobRecord, now: float, state: State, error: dict[str, Any] | None
) -> dict[str, Any]:
    """One line of a job's attempt history, written when a delivery ends."""
    brief = None if error is None else {"type": error.get("type"), "message": error.get("message")}
    return {
        "attempt": job.attempt,
        "worker": job.worker,
        "started_at": job.started_at,
        "finished_at": now,
        "state": state.value,
        "error": brief,
    }


def requeued_entry(job: JobRecord, now: float) -> dict[str, Any]:
    """The history line a manual retry leaves; retries are counted from the last one."""
    return {"attempt": job.attempt, "worker": None, "started_at": None, "finished_at": now,
            "state": REQUEUED, "error": None}  # fmt: skip


def retries_used(attempts: list[dict[str, Any]]) -> int:
    """Retries since the job was last queued by hand (or created)."""
    used = 0
    for entry in reversed(attempts):
        if entry.get("state") == REQUEUED:
            break
        used += entry.get("state") == "RETRY"
    return used


def revoked_error(reason: str) -> dict[str, Any]:
    return {"type": "Revoked", "message": reason}


def revoke_statements(
    was: State, job_id: str, terminate: bool, error: str | None, now: float, keep_until: float
) -> list[tuple[str, dict[str, Any]]]:
    """The named queries (with their parameters) a revoke runs in SQL, by the state it
    found the job in: a waiting job ends REVOKED; a running one is flagged, and with
    terminate the workers' revocation watches are woken (``revoked_terminate``); a job
    that had ended SUCCESS or FAILURE is marked revoked too late."""
    if was.waiting:
        params = {"id": job_id, "now": now, "keep_until": keep_until, "error": error}
        return [("cancel_waiting", params)]
    if was is State.STARTED:
        flag = ("cancel_running", {"id": job_id, "terminate": terminate})
        return [flag, ("revoked_terminate", {"id": job_id})] if terminate else [flag]
    return [] if was is State.REVOKED else [("cancel_late", {"id": job_id})]


def matches(job: JobRecord, query: JobQuery) -> bool:
    """Whether a job passes a JobQuery's filters (for backends that filter in Python)."""
    return (
        (query.before is None or job.id < query.before)
        and (query.created_after is None or job.created_at >= query.created_after)
        and (query.created_before is None or job.created_at < query.created_before)
        and (query.text is None or query.text.encode() in job.payload)
        and (query.states is None or job.state in query.states)
        and (query.queues is None or job.queue in query.queues)
        and (query.tasks is None or job.task in query.tasks)
    )


def lost_delivery_end(
    revoked: bool, acks_early: bool, lost_after: int, max_lost: int
) -> tuple[State, dict[str, Any]] | None:
    """How a job whose lease expired ends, or None when it goes back to its queue.

    ``lost_after`` counts this lost delivery. Revoked: REVOKED. Its task acknowledges on
    start (``acks_late=False``): FAILURE, not run again. ``max_lost`` workers lost:
    FAILURE ("worker lost"). Every backend's rescue asks this one function.
    """
    if revoked:
        return State.REVOKED, revoked_error("revoked")
    if acks_early:
        return State.FAILURE, not_redelivered_error()
    if lost_after >= max_lost:
        return State.FAILURE, worker_lost_error(lost_after)
    return None
