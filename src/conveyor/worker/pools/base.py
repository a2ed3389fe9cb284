"""The pool interface the worker drives. Pools run jobs and post what happened to
``results``: an ``Outcome`` for each delivery that ended, or ``Lost`` when the process
running it died (the job goes back to its queue, counted as a lost delivery).

A pool that claims its own jobs (``claims = True``: the process pool, whose children
claim and acknowledge in batches, so no job passes through the worker's process) also
posts ``Held`` (jobs it now holds: the worker renews their leases), ``Stored`` (outcomes
it has acknowledged itself: the worker counts and logs them), ``Unstarted`` (jobs the
worker must release), ``Dropped`` (jobs it released itself), ``Orphaned`` (a child died:
release whatever is still leased under its token prefix) and ``Drained`` (burst mode:
nothing is left to claim)."""

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
    """A delivery whose process died. ``counted``: it was running there (requeued, and
    counted towards ``max_lost_leases``); else it had finished and its outcome died
    unstored with the process: it runs again, its attempt recorded but not counted."""

    lease: Lease
    reason: str
    counted: bool = True


@dataclass(frozen=True, slots=True)
class Held:
    records: list[JobRecord]


@dataclass(frozen=True, slots=True)
class Stored:
    """Outcomes already acknowledged (results trimmed to a preview), and the ids the
    backend refused because their lease was lost."""

    outcomes: list[Outcome]
    refused: list[str]


@dataclass(frozen=True, slots=True)
class Unstarted:
    leases: list[Lease]


@dataclass(frozen=True, slots=True)
class Dropped:
    leases: list[Lease]


@dataclass(frozen=True, slots=True)
class Orphaned:
    """A child died (or was killed) and every delivery it reported is settled: the jobs
    still leased with its token ``prefix`` it claimed and never reported (the claim's
    reply died with it, or it had not written them down yet). None of them started:
    release them."""

    prefix: str


@dataclass(frozen=True, slots=True)
class Drained:
    pass


Report = Outcome | Lost | Held | Stored | Unstarted | Dropped | Orphaned | Drained


class Pool(ABC):
    kind: str = ""
    #: True: the pool claims and acknowledges jobs itself (see the module docstring).
    claims: bool = False

    def __init__(self, app: App, concurrency: int, results: queue.SimpleQueue[Report]) -> None:
        self.app, self.concurrency, self.results = app, concurrency, results

    def configure(  # noqa: B027 - a hook; only a pool that claims its own jobs needs it
        self, worker_id: str, queues: list[str], prefetch: int | None, burst: bool
    ) -> None:
        """What a pool that claims its own jobs claims, and for which worker."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def submit(self, record: JobRecord) -> None:
        """Queue a claimed job to run as soon as a slot is free. Never blocks."""

    @abstractmethod
    def terminate(self, job_id: str) -> None:
        """Stop a running job (revoked with terminate). Its outcome is reported REVOKED."""

    def unreported_leases(self) -> list[Lease]:
        """Leases the pool holds that it has not posted as ``Held`` yet (the worker renews
        them too). A pool that never claims itself has none."""
        return []

    def claim_prefixes(self) -> list[str]:
        """The lease token prefixes its claimers use (``Orphaned``): after a shutdown that
        killed them, what is still leased under these was claimed and never started."""
        return []

    @abstractmethod
    def running_jobs(self) -> set[str]:
        """Ids of the jobs running now: begun, their outcome not yet posted. A shutdown
        that stops them records their attempt as interrupted (the others never started)."""

    @abstractmethod
    def take_unstarted(self) -> list[JobRecord]:
        """Remove and return the submitted jobs that have not started (for release)."""

    @abstractmethod
    def shutdown(self, *, wait: bool) -> None:
        """Stop the pool. ``wait``: let running jobs finish first; else stop them now."""
