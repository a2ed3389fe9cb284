"""``Job``: a handle on one job, by id. Every property reads the stored record afresh."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .errors import JobFailed, JobRevoked, JobTimeout
from .records import JobRecord, Revocation
from .states import State

if TYPE_CHECKING:
    from .app import App


class Job:
    """A handle on a job. Creating one stores nothing; reading it asks the backend."""

    def __init__(self, app: App, job_id: str) -> None:
        self.app, self.id = app, job_id

    def __repr__(self) -> str:
        return f"<Job {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def record(self) -> JobRecord:
        """The whole stored record; raises ``JobNotFound`` for an unknown id."""
        return self.app.backend.get(self.id)

    @property
    def state(self) -> State:
        return self.record().state

    @property
    def result(self) -> Any:
        """The return value once SUCCESS, else None."""
        record = self.record()
        return record.result if record.state is State.SUCCESS else None

    @property
    def progress(self) -> dict[str, Any] | None:
        """{"percent": ..., "message": ..., "meta": {...}} as last reported by the task."""
        return self.record().progress

    @property
    def error(self) -> dict[str, Any] | None:
        """{"type", "message", "traceback"} of the last failure, or None."""
        return self.record().error

    def ready(self) -> bool:
        return self.state.finished

    def get(self, timeout: float | None = None, *, propagate: bool = True) -> Any:
        """Wait for the job to finish and return its result.

        Raises ``JobFailed`` / ``JobRevoked`` when it ended so (unless ``propagate`` is
        False, then None is returned), and ``JobTimeout`` (a ``TimeoutError``) when
        ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while True:
            record = self.record()
            if record.state.finished:
                return _outcome(record, propagate)
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(
                    f"job {self.id} ({record.task}) is still {record.state} after {timeout}s; "
                    "is a worker consuming its queue? `conveyor doctor` can tell"
                )
            time.sleep(
                pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic()))
            )
            pause = min(pause * 1.5, 0.2)

    def revoke(self, *, terminate: bool = False, reason: str = "revoked") -> Revocation:
        """Cancel the job durably and say what that did: revoked while waiting,
        terminating while running, or too late (see ``Revocation``)."""
        from .control.jobs import cancel_job

        return cancel_job(self.app, self.id, terminate=terminate, reason=reason)


def _outcome(record: JobRecord, propagate: bool) -> Any:
    if record.state is State.SUCCESS:
        return record.result
    if not propagate:
        return None
    error = record.error or {}
    message = f"job {record.id} ({record.task}) {record.state}: {error.get('type')}: {error.get('message')}"
    if record.state is State.REVOKED:
        raise JobRevoked(message, error=error)
    raise JobFailed(message, error=error)
