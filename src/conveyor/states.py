"""Job states. The names are Celery's, so existing code and habits carry over."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING = "PENDING"  # queued, claimable now
    SCHEDULED = "SCHEDULED"  # waiting for its eta
    STARTED = "STARTED"  # leased by a worker, running (with progress)
    RETRY = "RETRY"  # failed an attempt, waiting for its retry delay
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def waiting(self) -> bool:
        return self in WAITING


#: States a worker may claim from (once ``run_at`` has passed).
WAITING = frozenset({State.PENDING, State.SCHEDULED, State.RETRY})
#: Terminal states: nothing changes a job after it reaches one, except an explicit retry.
FINISHED = frozenset({State.SUCCESS, State.FAILURE, State.REVOKED})

PRIORITY_NAMES = {"low": 0, "normal": 5, "high": 7, "critical": 9}
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 9, 5
