"""``Job``: a handle on one job, by id. Every property reads the stored record afresh."""

from __future__ import annotations

import time
from collections.abc import Callable
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
        wait = ResultWait(timeout, name_of=self._worker_name)
        while True:
            done, value = wait.look(self.record(), propagate)
            if done:
                return value
            time.sleep(wait.next_pause())

    def _worker_name(self, worker_id: str) -> str | None:
        found = self.app.backend.worker_directory([worker_id]).get(worker_id)
        return found.name if found else None

    def revoke(self, *, terminate: bool = False, reason: str = "revoked") -> Revocation:
        """Cancel the job durably and say what that did: revoked while waiting,
        terminating while running, or too late (see ``Revocation``)."""
        return self.app.revoke(self.id, terminate=terminate, reason=reason)


class ResultWait:
    """The looks a wait for a job's result takes, shared by ``Job.get`` and ``app.aio``:
    the first after a short pause, then 1.5 times longer each, at most 0.2 s apart."""

    def __init__(
        self,
        timeout: float | None,
        first_pause: float = 0.002,
        name_of: Callable[[str], str | None] | None = None,
    ) -> None:
        """``name_of``: a worker's name by its id, for a timeout's message (read then only)."""
        self.timeout = timeout
        self.name_of = name_of
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.pause = first_pause

    def look(self, record: JobRecord, propagate: bool) -> tuple[bool, Any]:
        """(True, result) once the job finished; raises past the deadline; else (False, None)."""
        if record.state.finished:
            return True, outcome(record, propagate)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise JobTimeout(self.still(record))
        return False, None

    def still(self, record: JobRecord) -> str:
        """Why the wait ended without a result: a job still running, or still waiting."""
        where = f"job {record.id} ({record.task})"
        if record.state is State.STARTED:
            name = self.name_of(record.worker) if self.name_of and record.worker else None
            worker = f"{name} ({record.worker})" if name else record.worker
            return (
                f"{where} is running on worker {worker} and still going after {self.timeout}s "
                f"(attempt {record.attempt}); wait longer, or look at it: conveyor inspect job {record.id}"
            )  # fmt: skip
        return (
            f"{where} is still {record.state} after {self.timeout}s; "
            "is a worker consuming its queue? `conveyor doctor` can tell"
        )

    def next_pause(self) -> float:
        pause = self.pause
        self.pause = min(pause * 1.5, 0.2)
        if self.deadline is None:
            return pause
        return max(0.0, min(pause, self.deadline - time.monotonic()))


def outcome(record: JobRecord, propagate: bool) -> Any:
    """A finished record's result, or its failure raised (``JobFailed``/``JobRevoked``)."""
    if record.state is State.SUCCESS:
        return record.result
    if not propagate:
        return None
    error = record.error or {}
    message = f"job {record.id} ({record.task}) {record.state}: {error.get('type')}: {error.get('message')}"
    if record.state is State.REVOKED:
        raise JobRevoked(message, error=error)
    raise JobFailed(message, error=error)
