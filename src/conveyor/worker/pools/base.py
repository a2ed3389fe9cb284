"""The pool interface the worker drives. Pools run jobs and post what happened to
``results``: an ``Outcome`` for each delivery that ended, or ``Lost`` when the process
running it died (the job goes back to its queue, counted as a lost delivery)."""

from __future__ import annotations

import queue
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...records import JobRecord, Lease, Outcome

if TYPE_CHECKING:
    from ...app import App


@dataclass(frozen=True, slots=True)
class Lost:
    lease: Lease
    reason: str


Report = Outcome | Lost


class Pool(ABC):
    kind: str = ""

    def __init__(self, app: App, concurrency: int, results: queue.SimpleQueue[Report]) -> None:
        self.app, self.concurrency, self.results = app, concurrency, results

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def submit(self, record: JobRecord) -> None:
        """Queue a claimed job to run as soon as a slot is free. Never blocks."""

    @abstractmethod
    def terminate(self, job_id: str) -> None:
        """Stop a running job (revoked with terminate). Its outcome is reported REVOKED."""

    @abstractmethod
    def take_unstarted(self) -> list[JobRecord]:
        """Remove and return the submitted jobs that have not started (for release)."""

    @abstractmethod
    def shutdown(self, *, wait: bool) -> None:
        """Stop the pool. ``wait``: let running jobs finish first; else stop them now."""
