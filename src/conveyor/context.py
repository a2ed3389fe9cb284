"""What a running task can see and do: ``self`` of a ``bind=True`` task."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import Retry
from .events import JobProgressed
from .records import Lease

if TYPE_CHECKING:
    from .app import App

#: ``is_revoked()`` asks the backend at most this often (seconds).
REVOKE_CHECK_INTERVAL = 0.5


@dataclass
class Request:
    """The job being run: id, task, attempt (1 on the first run) and its arguments."""

    id: str
    task: str
    queue: str
    attempt: int
    max_retries: int
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    root_id: str | None = None
    #: Retries before this run, counted since the job was last queued by hand.
    retries: int = 0


class TaskContext:
    """Passed as the first argument to ``bind=True`` tasks."""

    def __init__(self, app: App, request: Request, lease: Lease) -> None:
        self.app, self.request, self._lease = app, request, lease
        self._revoked = False
        self.terminate_requested = False
        self._checked_at = 0.0

    def retry(
        self, *, countdown: float | None = None, exc: BaseException | None = None
    ) -> NoReturn:
        """End this attempt and run the job again after ``countdown`` seconds (default: the
        task's backoff). Past ``max_retries`` the job ends FAILURE with ``exc``."""
        raise Retry(countdown=countdown, exc=exc)

    def update_progress(
        self, percent: float | None = None, message: str | None = None, **meta: Any
    ) -> None:
        """Store progress on the job record, readable as ``job.progress`` while it runs."""
        self.app.backend.update_progress(
            self._lease, {"percent": percent, "message": message, "meta": meta}
        )
        events, request = self.app.events, self.request
        if events.wants(JobProgressed):
            at = self.app.backend.now()
            events.emit(
                JobProgressed(at, request.id, request.task, request.queue, percent, message)
            )

    def is_revoked(self) -> bool:
        """True once the job was revoked: a task can check it to stop at a point of its
        choosing, by raising ``conveyor.errors.Terminated`` (the job ends REVOKED, no
        traceback); with terminate, every pool also stops it: see docs/worker.md."""
        if not self._revoked and time.monotonic() - self._checked_at >= REVOKE_CHECK_INTERVAL:
            self._checked_at = time.monotonic()
            revoke = self.app.backend.get(self.request.id).revoke
            # Seen here before the worker's heartbeat brings it: a revoke with terminate
            # must still end the job REVOKED, not SUCCESS, whichever path saw it first.
            if revoke is not None:
                self.mark_revoked(terminate=revoke == "terminate")
        return self._revoked

    def mark_revoked(self, *, terminate: bool = False) -> None:
        """Called by the pool when the job is revoked; with ``terminate`` its outcome will be
        REVOKED even if the task returns normally after noticing."""
        self._revoked = True
        self.terminate_requested = self.terminate_requested or terminate
