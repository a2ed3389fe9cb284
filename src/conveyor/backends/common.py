"""Small pieces every backend shares: attempt log entries and standard error records."""

from __future__ import annotations

from typing import Any

from ..records import JobRecord
from ..states import State


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


def revoked_error(reason: str) -> dict[str, Any]:
    return {"type": "Revoked", "message": reason}
