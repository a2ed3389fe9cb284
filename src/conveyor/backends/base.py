"""The backend contract.

Public methods are job transitions (``enqueue``, ``claim``, ``heartbeat``, ``ack`` with
``complete``/``fail``/``snooze`` as one-job forms, ``ack_and_claim``, ``release``, ``cancel``,
``rescue_expired``, ``prune``) plus what the control plane, the scheduler and workflows
need. They read the clock, validate and compute derived values here, once, and then
call the small ``_primitives`` each backend implements. Every primitive is atomic on its
own and takes a batch where a batch makes sense, so Redis can run it as one script and
SQL as one statement or transaction.

Events (one per job state change) are written by the primitives in the same atomic step
as the change they describe.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..errors import BackendError, ConfigurationError, InvalidTransition, JobNotFound, LeaseLost
from ..records import (
    AuditEntry,
    Event,
    HeartbeatReply,
    JobQuery,
    JobRecord,
    Lease,
    Outcome,
    Run,
    WorkerInfo,
)
from ..serialization import check_jsonable
from ..states import State
from .rollup import ROLLUP_KEPT, Minute, minute_of

Clock = Callable[[], float]
#: What ``_finish_and_claim`` claims: (queues, worker, limit, lease_until).
ClaimArgs = tuple[list[str], str, int, float]

#: Finished records are kept this long by default (seconds): 7 days.
DEFAULT_RESULT_TTL = 7 * 24 * 3600.0
#: A job whose worker died this many times in a row ends FAILURE ("worker lost").
DEFAULT_MAX_LOST_LEASES = 3
#: A worker unseen for this long is dropped from the registry (seconds).
WORKER_TTL = 60.0
#: A worker's entry (stopped, or silent) is kept this long after its last heartbeat, so
#: the jobs it ran can still name it (``worker_directory``); then it is deleted.
WORKER_KEPT = 86_400.0
#: The event stream keeps at most this many recent events.
EVENTS_KEPT = 10_000
#: ``waiting_tasks`` reads the tasks of this many of each queue's next jobs (and of the
#: next delayed ones), so a check never reads a whole backlog.
TASK_SAMPLE = 1000
#: The audit trail keeps this many entries (the newest).
AUDIT_KEPT = 100_000
#: The header of a workflow step started by a step that was retried by hand: the step may
#: have been stored already as never run (``common.aborted_step``) when that step failed,
#: and then runs in its place (``enqueue``). Never stored.
RERUN = "rerun_aborted"


def worker_lost_error(lost: int, cause: str | None = None) -> dict[str, Any]:
    """The FAILURE error of a job lost ``lost`` times; ``cause``: what the worker saw of
    the last death, when it saw one (a pool child's exit code or signal)."""
    last = (
        f"The last time: {cause}"
        if cause
        else "Check the worker logs for a crash (out of memory, segfault, SIGKILL) caused by "
        "this job's input"
    )
    return {
        "type": "WorkerLost",
        "message": (
            f"the worker running this job died or stopped heartbeating {lost} times in a row; "
            f"the job was failed instead of being retried forever. {last}"
        ),
    }


def worker_died_error(cause: str) -> dict[str, Any]:
    """The attempt entry of a delivery whose process its worker saw die (``abandon``)."""
    return {"type": "WorkerLost", "message": f"{cause}; it went back to its queue"}


def not_redelivered_error() -> dict[str, Any]:
    return {
        "type": "WorkerLost",
        "message": (
            "the worker running this job died; it was not run again because its task "
            "acknowledges on start (acks_late=False). Retry it by hand if it is safe to"
        ),
    }


def interrupted_error() -> dict[str, Any]:
    return {
        "type": "Interrupted",
        "message": "the worker shut down; the job went back to its queue",
    }


def expired_error(expires_at: float) -> dict[str, Any]:
    when = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="milliseconds")
    return {
        "type": "Expired",
        "message": f"the job expired at {when.replace('+00:00', 'Z')} before a worker started "
        "it, so it never ran (its expires came before a worker was free, or before its eta)",
    }


class RevocationWatch:
    """Wakes a worker when a running job is revoked with ``terminate``, so it need not
    wait for its next heartbeat. A hint only: the job's record stays the truth, and the
    worker asks for it (a heartbeat) when woken. This base never wakes: it only waits.
    """

    def wait(self, timeout: float) -> bool:
        """Block until a running job may have been revoked with terminate since the
        previous call (or since the watch was made): True. False after ``timeout``."""
        time.sleep(timeout)
        return False

    def close(self) -> None:
        """Release the watch's connection."""


class AsyncReads:
    """Reads made on an event loop, for a backend whose driver has an async client: made
    there, a read skips the hand-off to a thread and back (``app.aio`` runs every other
    call on its threads). Bound to the loop that built it and closed on that loop
    (``app.aio.open``, ``app.aio.aclose``: the API's lifespan). A read returns exactly
    what the backend's synchronous read returns, decoded by the same code."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def get(self, job_id: str) -> JobRecord | None:
        """One job's record (``get_many([job_id])``), or None if no job has that id."""
        raise NotImplementedError

    async def kv_get(self, key: str, default: Any = None) -> Any:
        """``Backend.kv_get`` (the API's token check reads its entry this way)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the connections (on the loop that opened them)."""


class Backend(ABC):
    """Storage and state transitions for jobs; see the module docstring."""

    #: True when several processes may share this backend (not ``memory://``).
    shared = True
    #: The lease token of every job this handle claims begins with this. A process-pool
    #: child sets its own, so that if it dies between a claim and telling its worker what
    #: it claimed, the worker finds those jobs (``leases_of``) and puts them back at once.
    #: Empty (the default): tokens are random only.
    lease_prefix = ""
    #: The longest one prune batch should take, in seconds: the pruner grows its batches
    #: while behind only while one takes less, and halves them above twice this.
    prune_batch_seconds = 0.1
    #: True where a prune batch holds every other client of the store while it runs (one
    #: script on a single-threaded server): the pruner then keeps to ``prune_share`` of
    #: the store's time while behind, instead of taking more to catch up.
    prune_holds_store = False

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        result_ttl: float = DEFAULT_RESULT_TTL,
        max_lost_leases: int = DEFAULT_MAX_LOST_LEASES,
    ) -> None:
        self.url = url
        self.clock: Clock = clock or time.time
        self.result_ttl = result_ttl
        self.max_lost_leases = max_lost_leases

    def now(self) -> float:
        return self.clock()

    def driver_error(self, exc: Exception) -> BackendError | None:
        """What a driver's exception means, as the ``BackendError`` workers retry on; None
        for an exception that is not the driver's (``common.guarded`` re-raises it)."""
        return None

    # -- producers ---------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[JobRecord], *, connection: Any = None) -> list[bool]:
        """Store new jobs in one step. An id that exists already is left as it is.

        Returns, per job, whether it was inserted (False: a job with that id existed, so
        the enqueue was a no-op, which makes enqueue idempotent by id). Except for a
        workflow step marked ``RERUN``: when its id holds a step stored as never run
        (``common.aborted_step``), that record runs now with this job's input (``_rerun``). A job may also be
        stored already finished (REVOKED or FAILURE with its error): workflows record the
        steps that will never run that way. A job stored unfinished has no ``keep_until``
        (any given is dropped): it gets one when it finishes, and prune reads that alone.

        ``connection``: a database connection the caller holds, for a transactional enqueue
        (PostgreSQL only): the jobs exist if and only if the caller's transaction commits.
        """
        if not jobs:
            return []
        now = self.now()
        rerun = {job.id for job in jobs if job.headers.pop(RERUN, False) and self._rerun(job, now)}
        if rerun:  # steps that run in the place of their never-run records: not inserted
            rest = iter(self.enqueue([j for j in jobs if j.id not in rerun], connection=connection))
            return [True if job.id in rerun else next(rest) for job in jobs]
        for job in jobs:
            if job.state.finished:
                job.finished_at = job.finished_at or now
                job.keep_until = job.keep_until or now + self.result_ttl
            else:  # only a finished record is ever pruned: prune reads keep_until alone
                job.keep_until = None
        if connection is not None:
            enqueue_on = getattr(self, "enqueue_on", None)
            if enqueue_on is None:
                raise ConfigurationError(
                    f"a transactional enqueue (connection=...) needs the PostgreSQL backend, not {self.url.split(':')[0]}"
                )
            inserted: list[bool] = enqueue_on(connection, jobs)
            return inserted
        return self._insert(jobs)

    def join_group(self, group_id: str, index: int, size: int, result: Any) -> list[Any] | None:
        """Record member ``index``'s result in group ``group_id`` (once: a repeat is
        ignored) and, when all ``size`` members have one, return the results in order."""
        check_jsonable(result, "a group member's result")
        return self._join(group_id, index, size, result, self.now() + self.result_ttl)

    def get(self, job_id: str) -> JobRecord:
        found = self._get([job_id])
        if job_id not in found:
            raise JobNotFound(
                f"no job has the id {job_id!r}; check the id, or it may have been pruned"
            )
        return found[job_id]

    def get_many(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        return self._get(list(job_ids)) if job_ids else {}

    # -- workers -----------------------------------------------------------------------

    def claim(
        self, queues: Sequence[str], worker: str, limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        """Lease up to ``limit`` due jobs from ``queues``: highest priority first, then FIFO.

        Paused queues are skipped. Jobs past their ``expires_at`` are not returned; they
        end REVOKED with the reason on their record.
        """
        if limit <= 0 or not queues:
            return []
        now = self.now()
        return self._settle_claimed(
            self._claim(list(queues), worker, limit, now, now + lease_seconds)
        )

    def wait_and_claim(
        self, queues: Sequence[str], worker: str, limit: int, lease_seconds: float, timeout: float
    ) -> list[JobRecord]:
        """Wait up to ``timeout`` for a job to become available (``wait_for_jobs``), then
        ``claim``. One call, so a backend can do both in one round trip (Redis does)."""
        if timeout > 0:  # a busy worker claims again at once: not even a look at the hint
            self.wait_for_jobs(queues, timeout)
        return self.claim(queues, worker, limit, lease_seconds)

    def _settle_claimed(self, claimed: list[JobRecord]) -> list[JobRecord]:
        """End the claimed jobs already past ``expires_at`` (at their claim's time, their
        ``started_at``) as REVOKED; the rest in run order."""
        if len(claimed) == 1 and claimed[0].expires_at is None:
            return claimed  # an idle worker's claim: between its reply and the task's start
        expired = [
            j for j in claimed if j.expires_at is not None and j.expires_at <= (j.started_at or 0)
        ]
        if expired:
            self.ack(
                Outcome(
                    j.id,
                    j.lease_token or "",
                    State.REVOKED,
                    error=expired_error(j.expires_at or 0),
                )
                for j in expired
            )
            gone = {j.id for j in expired}
            claimed = [j for j in claimed if j.id not in gone]
        claimed.sort(key=lambda j: (-j.priority, j.run_at))
        return claimed

    def heartbeat(
        self, worker: WorkerInfo, leases: Sequence[Lease], lease_seconds: float
    ) -> HeartbeatReply:
        """Renew ``leases`` and the worker's registry entry in one step.

        The reply names the jobs revoked with ``terminate=True`` (stop them) and the leases
        this worker no longer holds (drop them: their outcome would be refused).
        """
        now = self.now()
        worker.last_seen = now
        worker.running = [lease.job_id for lease in leases]
        self._worker_put(worker)
        if not leases:
            return HeartbeatReply()
        return self._renew(list(leases), now, now + lease_seconds)

    def ack(self, outcomes: Iterable[Outcome]) -> list[str]:
        """Record how deliveries ended. Returns the ids whose outcome was refused because
        the lease was lost (another delivery owns the job now): never written twice."""
        batch = list(outcomes)
        if not batch:
            return []
        now = self.now()
        for outcome in batch:
            if outcome.state is State.RETRY:
                outcome.run_at = now + max(0.0, outcome.delay)
        return self._finish(batch, now, now + self.result_ttl)

    def ack_and_claim(
        self,
        outcomes: Iterable[Outcome],
        queues: Sequence[str],
        worker: str,
        limit: int,
        lease_seconds: float,
    ) -> tuple[list[str], list[JobRecord]]:
        """``ack(outcomes)`` then ``claim(queues, worker, limit, lease_seconds)`` in one
        step where the backend can (Redis: one script; PostgreSQL: one transaction), so a
        busy worker pays one round trip per batch instead of two. Each half keeps its own
        guarantees: a stale lease's outcome is refused while the claim still runs, and the
        claim skips paused queues and orders by priority, then FIFO, across ``queues``.
        Returns (the refused ids, the claimed jobs)."""
        batch = list(outcomes)
        if not batch:
            return [], self.claim(queues, worker, limit, lease_seconds)
        if limit <= 0 or not queues:
            return self.ack(batch), []
        now = self.now()
        for outcome in batch:
            if outcome.state is State.RETRY:
                outcome.run_at = now + max(0.0, outcome.delay)
        claim = (list(queues), worker, limit, now + lease_seconds)
        refused, claimed = self._finish_and_claim(batch, now, now + self.result_ttl, claim)
        return refused, self._settle_claimed(claimed)

    def _finish_and_claim(
        self, outcomes: list[Outcome], now: float, keep_until: float, claim: ClaimArgs
    ) -> tuple[list[str], list[JobRecord]]:
        """The generic form: ``_finish`` then ``_claim``, two atomic steps. Once the
        outcomes are stored, a failed claim claims nothing rather than raising: the caller
        must not store them again (its retry would be refused), and its next claim meets
        the error again. Backends override it with one atomic step."""
        refused = self._finish(outcomes, now, keep_until)
        try:
            return refused, self._claim(*claim[:3], now, claim[3])
        except BackendError:
            return refused, []

    def complete(self, lease: Lease, result: Any = None) -> None:
        self._ack_one(Outcome(lease.job_id, lease.token, State.SUCCESS, result=result))

    def fail(self, lease: Lease, error: dict[str, Any]) -> None:
        self._ack_one(Outcome(lease.job_id, lease.token, State.FAILURE, error=error))

    def snooze(self, lease: Lease, delay: float, error: dict[str, Any] | None = None) -> None:
        """End this attempt and run the job again after ``delay`` seconds (state RETRY)."""
        self._ack_one(Outcome(lease.job_id, lease.token, State.RETRY, error=error, delay=delay))

    def _ack_one(self, outcome: Outcome) -> None:
        if self.ack([outcome]):
            raise LeaseLost(
                f"job {outcome.job_id}: the lease was lost, so this outcome was not recorded"
            )

    def release(
        self,
        leases: Sequence[Lease],
        *,
        interrupted: bool = False,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Give back claimed jobs (shutdown): they are queued again at once, in their old
        place. Jobs that never started: the claim does not count as an attempt. With
        ``interrupted``, jobs that were running when their worker stopped them: the attempt
        counts and is recorded in ``attempts``, ending PENDING with an ``Interrupted`` error;
        with ``error``, the same with that error (not counted as a lost delivery either)."""
        if leases:
            error = error or (interrupted_error() if interrupted else None)
            self._release(list(leases), self.now(), error)

    def abandon(
        self, leases: Sequence[Lease], causes: Mapping[str, str] | None = None
    ) -> list[str]:
        """The processes running these deliveries died: treat their leases as expired now
        (requeued, or failed after ``max_lost_leases``), without waiting for the lease.
        ``causes``: by job id, what the caller saw of the death ("worker child 12 died
        with exit code 3 while running the job"), recorded in the job's attempt history
        (error ``WorkerLost``) and in its ``WorkerLost`` failure; a job without one is
        recorded as an expired lease (``LeaseExpired``, no message)."""
        if not leases:
            return []
        self._expire(list(leases))
        now = self.now()
        return self._rescue(now, self.max_lost_leases, now + self.result_ttl, dict(causes or {}))

    def abandon_worker(self, worker_id: str, cause: str) -> list[str]:
        """The worker ``worker_id`` is known dead (its process is gone, seen from its
        host): ``abandon`` every delivery it still holds, each with ``cause``, without
        waiting for their leases. Safe when several callers race: each reads the
        deliveries with their tokens, and a token that changed (the job returned by
        another caller, or claimed again since) is left alone, so each job is returned
        once. Returns the ids touched (``abandon``)."""
        leases = self._worker_leases(worker_id)
        return self.abandon(leases, dict.fromkeys((x.job_id for x in leases), cause))

    def leases_of(self, prefix: str) -> list[Lease]:
        """The deliveries held now whose lease token begins with ``prefix``: every job the
        claimer whose ``lease_prefix`` it is still holds. Reads only the jobs held (an
        index of leases), however large the store."""
        if not prefix:
            raise ValueError("leases_of needs a prefix: an empty one would name every delivery")
        return self._leases_of(prefix)

    def next_due(self, queues: Sequence[str]) -> float | None:
        """The earliest ``run_at`` of a waiting job in ``queues`` (paused ones excluded)."""
        return self._next_due(list(queues)) if queues else None

    def update_progress(self, lease: Lease, progress: dict[str, Any]) -> None:
        if not self._set_progress(lease.job_id, lease.token, progress, self.now()):
            raise LeaseLost(f"job {lease.job_id}: the lease was lost, so progress was not recorded")

    def cancel(self, job_id: str, *, terminate: bool = False, reason: str = "revoked") -> JobRecord:
        """Revoke a job, durably. A waiting job ends REVOKED at once and never runs. A
        running job is flagged; with ``terminate`` the watches of ``watch_revocations``
        wake, its worker stops it and it ends REVOKED. A job that had already ended
        SUCCESS or FAILURE keeps its state and outcome; its ``revoke`` field becomes
        ``"late"`` (unless it was flagged while running), so the record tells."""
        return self.revoke(job_id, terminate=terminate, reason=reason)[0]

    def revoke(
        self, job_id: str, *, terminate: bool = False, reason: str = "revoked"
    ) -> tuple[JobRecord, State]:
        """``cancel``, also returning the state the revoke found the job in (a waiting
        state means this call ended it)."""
        now = self.now()
        found = self._cancel(job_id, terminate, reason, now, now + self.result_ttl)
        if found is None:
            raise JobNotFound(f"no job has the id {job_id!r}")
        return found

    def missing_store(self) -> str | None:
        """Why a read-only command should not use this backend: it holds no Conveyor store,
        and its first use would create an empty one to read nothing from (a mistyped
        name). None when there is a store, when using it creates none (Redis, memory), or
        when the server cannot be asked (the command's own read reports that). Producers
        and workers do not ask: they create the store on first use."""
        return None

    def async_reads(self) -> AsyncReads | None:
        """Reads on the running event loop (see ``AsyncReads``), or None when the driver
        has no async client (``app.aio`` then reads on its threads)."""
        return None

    def watch_revocations(self) -> RevocationWatch:
        """A watch that wakes when a running job is revoked with terminate (one per
        worker: it may hold a connection of its own)."""
        return RevocationWatch()

    def rescue_expired(self) -> list[str]:
        """Return jobs whose lease expired (their worker died) to their queue.

        A job revoked meanwhile ends REVOKED; one whose task acknowledges on start
        (``headers["acks_late"] is False``) or that has lost ``max_lost_leases`` workers
        ends FAILURE with a "worker lost" error. Returns the ids touched.
        """
        now = self.now()
        return self._rescue(now, self.max_lost_leases, now + self.result_ttl, {})

    def prune(self, limit: int = 1000, *, trim: bool = True) -> int:
        """Delete up to ``limit`` finished records past their ``keep_until``, and the
        event feed's oldest beyond its newest ``EVENTS_KEPT``. ``trim``: also the rest
        that ages out (the audit log's oldest, expired key-values and group results,
        rollups older than ``rollup.ROLLUP_KEPT``), which the pruner asks once per
        ``prune_interval``, not every batch: those deletes rarely find anything, and
        each is a statement of its own."""
        return self._prune(self.now(), limit, trim)

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Block until a job may have become available in ``queues``, or ``timeout``.

        A hint only: callers claim afterwards and cope with finding nothing.
        """
        time.sleep(timeout)

    # -- control plane -----------------------------------------------------------------

    def list_jobs(self, query: JobQuery | None = None) -> list[JobRecord]:
        return self._list(query or JobQuery())[0]

    def list_page(self, query: JobQuery) -> tuple[list[JobRecord], str | None]:
        """``list_jobs``, and where the search stopped: when ``query.scan`` jobs were
        examined before ``query.limit`` matched, the id below which it resumes (every
        job above it was examined); else None."""
        return self._list(query)

    def requeue(self, job_id: str) -> JobRecord:
        """Run a FAILURE or REVOKED job again (a manual retry): PENDING now, with its
        history kept and a fresh retry budget. Raises ``InvalidTransition`` otherwise."""
        record, changed = self._requeue(job_id, self.now())
        if record is None:
            raise JobNotFound(f"no job has the id {job_id!r}")
        if not changed:
            raise InvalidTransition(
                f"job {job_id} is {record.state}; only FAILURE or REVOKED jobs can be retried"
                + (
                    " (cancel it first)"
                    if record.state.waiting or record.state is State.STARTED
                    else ""
                )
            )
        return record

    def purge(self, queue: str, reason: str = "purged by an operator") -> int:
        """End every waiting job of ``queue`` REVOKED (running jobs are left alone).
        The records stay, with the reason, until pruned. Returns how many."""
        now = self.now()
        purged = self._purge(queue, reason, now, now + self.result_ttl)
        self.emit("queue.purged", queue)
        return purged

    def recent_runs(self, since: float, limit: int = 100_000) -> list[Run]:
        """Jobs that ran and finished at or after ``since``, newest first, at most ``limit``."""
        return self._recent_runs(since, limit)

    def run_rollup(self, since: float) -> dict[tuple[str, int], Minute]:
        """The per-minute rollups (``backends.rollup``) of every queue, from the minute
        holding ``since`` on, within the last ``ROLLUP_KEPT`` seconds: {(queue, minute
        start): Minute}. Minutes without a finished run are left out."""
        return self._run_rollup(minute_of(max(since, self.now() - ROLLUP_KEPT)))

    def waiting_tasks(self) -> dict[str, set[str]]:
        """Per queue, the task names of its next waiting jobs: the next ``TASK_SAMPLE``
        due ones in claim order, and the ``TASK_SAMPLE`` delayed ones due first."""
        return self._waiting_tasks()

    def expired_waiting(self, queue: str) -> tuple[int, int]:
        """Of ``queue``'s next ``TASK_SAMPLE`` PENDING jobs in claim order, how many have
        an ``expires_at`` already passed (each ends REVOKED, ``Expired``, when a worker
        reaches it), and how many were looked at: (expired, read). Reads each job's expiry
        alone, never its record: no backend indexes waiting jobs by expiry, so the count
        is bounded, not of a whole backlog."""
        return self._expired_waiting(queue, self.now(), TASK_SAMPLE)

    def oldest_waiting(self) -> dict[str, float]:
        """Per queue, since when its longest-waiting due job has waited: the earliest
        ``run_at`` among jobs that could run now (delayed jobs count from their time)."""
        return self._oldest_waiting(self.now())

    def counts(self) -> dict[tuple[str, State], int]:
        """Number of jobs per (queue, state)."""
        return self._counts()

    def pause_queue(self, queue: str) -> None:
        self._set_paused(queue, True)
        self.emit("queue.paused", queue)

    def resume_queue(self, queue: str) -> None:
        self._set_paused(queue, False)
        self.emit("queue.resumed", queue)

    def paused_queues(self) -> set[str]:
        return self._paused()

    def unregister_worker(self, worker_id: str) -> None:
        """The worker stopped: it leaves the registry at once, and its entry is kept,
        marked stopped, for ``worker_directory``. One step in the store: a heartbeat
        racing it can neither revive the entry nor lose the stop, and one landing after it
        (a late or retried write) leaves the worker stopped. A second stop keeps the first
        time."""
        now = self.now()
        self._worker_stop(worker_id, now)
        self.emit("worker.offline", subject=worker_id)
        for gone in self._stale_workers(now - WORKER_KEPT):
            self._worker_delete(gone.id)

    def workers(self) -> list[WorkerInfo]:
        """Registered workers: those running and seen within ``WORKER_TTL`` seconds. Read
        without the stopped entries the registry keeps a day (a stop is frequent: every
        deploy), so a caller wanting the live ones does not pay for them."""
        return self._live_workers(self.now() - WORKER_TTL)

    def worker_directory(self, ids: Iterable[str]) -> dict[str, WorkerInfo]:
        """The entries of the workers with these ids, running, silent or stopped, kept
        ``WORKER_KEPT`` after their last heartbeat (older ones are deleted when a worker
        stops): the jobs they ran name them. Read by id, not the whole registry."""
        wanted = sorted(set(ids))
        horizon = self.now() - WORKER_KEPT
        return {w.id: w for w in self._worker_entries(wanted) if w.last_seen >= horizon}

    def events(self, after: int = 0, limit: int = 500) -> list[Event]:
        """Events with ``seq > after``, oldest first."""
        return self._events(after, limit)

    def emit(self, kind: str, queue: str = "", subject: str = "") -> None:
        """Add an event that is not a job's to the feed, after the change it tells of
        (job events are written with their change): ``queue.paused``, ``queue.resumed``,
        ``queue.purged`` (``queue``), ``worker.online``, ``worker.offline`` (``subject``:
        the worker's id, kept in the event's ``job_id``)."""
        self._put_event(self.now(), kind, queue, subject)

    # -- the audit trail (changes made through the API) ---------------------------------

    def record_audit(self, entry: AuditEntry) -> int:
        """Store one entry durably; returns its ``seq``. The newest ``AUDIT_KEPT`` are kept."""
        check_jsonable(entry.detail, "an audit entry's detail")
        return self._audit_put(entry)

    def audit(
        self, *, before: int | None = None, limit: int = 100, target: str | None = None
    ) -> list[AuditEntry]:
        """Entries newest first, with ``seq < before`` (a cursor), only those about
        ``target`` if given."""
        return self._audit_read(before, limit, target)

    # -- coordination (scheduler, workflows) --------------------------------------------

    def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take or extend the lock ``name`` for ``owner`` for ``ttl`` seconds."""
        now = self.now()
        return self._lock(name, owner, now, now + ttl)

    def release_lock(self, name: str, owner: str) -> bool:
        return self._unlock(name, owner)

    def lock_holder(self, name: str) -> tuple[str, float] | None:
        """Who holds the lock ``name`` and until when: (owner, until), or None when nobody
        does (never taken, released, or expired: its holder stopped extending it, and
        ``acquire_lock`` would give it to another owner now)."""
        held = self._lock_holder(name)
        return held if held is not None and held[1] > self.now() else None

    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to the counter ``key`` (created at 0); the new value."""
        return self._incr(key, amount)

    def kv_set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON value under ``key``, for ``ttl`` seconds or until deleted."""
        check_jsonable(value, f"the value for {key!r}")
        now = self.now()
        self._kv_set(key, value, None if ttl is None else now + ttl)

    def kv_get(self, key: str, default: Any = None) -> Any:
        return self._kv_get(key, self.now(), default)

    def kv_delete(self, key: str) -> bool:
        return self._kv_delete(key)

    # -- schedules (spec and state are written separately, so neither clobbers the other) --

    def put_schedule(self, name: str, spec: dict[str, Any]) -> None:
        """Create or replace a schedule's definition; its firing state is kept."""
        self._schedule_put(name, spec)

    def set_schedule_state(self, name: str, state: dict[str, Any]) -> None:
        """Record a schedule's firing state (last tick, next run); no-op if it was deleted."""
        self._schedule_state(name, state)

    def schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Every stored schedule: {name: (spec, state)}."""
        return self._schedules()

    def delete_schedule(self, name: str) -> bool:
        return self._schedule_delete(name)

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Make this process's connections ready to claim and acknowledge, so that its first
        claim and acknowledgement cost what the later ones do (a worker's process child
        calls it once, before it reports ready). Writes nothing. Raises ``BackendError``
        as a claim would. Nothing to do by default."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The backend can be used again afterwards."""

    # -- primitives --------------------------------------------------------------------

    @abstractmethod
    def _insert(self, jobs: Sequence[JobRecord]) -> list[bool]: ...
    @abstractmethod
    def _get(self, job_ids: list[str]) -> dict[str, JobRecord]: ...
    @abstractmethod
    def _claim(
        self, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> list[JobRecord]: ...
    @abstractmethod
    def _renew(self, leases: list[Lease], now: float, lease_until: float) -> HeartbeatReply: ...
    @abstractmethod
    def _finish(self, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]: ...
    @abstractmethod
    def _release(
        self, leases: list[Lease], now: float, interrupted: dict[str, Any] | None
    ) -> None: ...
    @abstractmethod
    def _expire(self, leases: list[Lease]) -> None: ...
    @abstractmethod
    def _leases_of(self, prefix: str) -> list[Lease]: ...
    # The deliveries held now by the worker with this id (the job's ``worker``).
    @abstractmethod
    def _worker_leases(self, worker_id: str) -> list[Lease]: ...
    @abstractmethod
    def _next_due(self, queues: list[str]) -> float | None: ...
    @abstractmethod
    def _set_progress(
        self, job_id: str, token: str, progress: dict[str, Any], now: float
    ) -> bool: ...
    @abstractmethod
    def _cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None: ...
    @abstractmethod
    def _rescue(
        self, now: float, max_lost: int, keep_until: float, causes: dict[str, str]
    ) -> list[str]:
        """``causes``: see ``abandon``."""
        ...

    @abstractmethod
    def _prune(self, now: float, limit: int, trim: bool) -> int: ...
    @abstractmethod
    def _list(self, query: JobQuery) -> tuple[list[JobRecord], str | None]: ...
    @abstractmethod
    def _counts(self) -> dict[tuple[str, State], int]: ...
    @abstractmethod
    def _requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]: ...
    # Atomically: if the stored ``job.id`` is a step stored as never run
    # (``common.aborted_step``), requeue it with ``job``'s payload, headers and expiry,
    # its abort kept in its history (``common.rerun_entry``); True then, else no change.
    @abstractmethod
    def _rerun(self, job: JobRecord, now: float) -> bool: ...
    @abstractmethod
    def _purge(self, queue: str, reason: str, now: float, keep_until: float) -> int: ...
    @abstractmethod
    def _recent_runs(self, since: float, limit: int) -> list[Run]: ...
    @abstractmethod
    def _run_rollup(self, since: int) -> dict[tuple[str, int], Minute]: ...
    @abstractmethod
    def _oldest_waiting(self, now: float) -> dict[str, float]: ...
    @abstractmethod
    def _waiting_tasks(self) -> dict[str, set[str]]: ...
    @abstractmethod
    def _expired_waiting(self, queue: str, now: float, sample: int) -> tuple[int, int]: ...
    @abstractmethod
    def _set_paused(self, queue: str, paused: bool) -> None: ...
    @abstractmethod
    def _paused(self) -> set[str]: ...
    # A heartbeat's entry: written unless the stored one is marked stopped.
    @abstractmethod
    def _worker_put(self, info: WorkerInfo) -> None: ...
    # Mark a worker's entry stopped at ``now`` in one step, unless it is already.
    @abstractmethod
    def _worker_stop(self, worker_id: str, now: float) -> None: ...
    @abstractmethod
    def _worker_delete(self, worker_id: str) -> None: ...
    # Entries last seen before ``before``, stopped or not.
    @abstractmethod
    def _stale_workers(self, before: float) -> list[WorkerInfo]: ...
    # Entries not marked stopped, seen at or after ``since``.
    @abstractmethod
    def _live_workers(self, since: float) -> list[WorkerInfo]: ...
    # The entries of these ids (those found).
    @abstractmethod
    def _worker_entries(self, ids: list[str]) -> list[WorkerInfo]: ...
    @abstractmethod
    def _events(self, after: int, limit: int) -> list[Event]: ...

    @abstractmethod
    def _put_event(self, now: float, kind: str, queue: str, subject: str) -> None: ...

    @abstractmethod
    def _audit_put(self, entry: AuditEntry) -> int: ...

    @abstractmethod
    def _audit_read(
        self, before: int | None, limit: int, target: str | None
    ) -> list[AuditEntry]: ...
    @abstractmethod
    def _lock(self, name: str, owner: str, now: float, until: float) -> bool: ...
    @abstractmethod
    def _unlock(self, name: str, owner: str) -> bool: ...
    # The stored (owner, until) of a lock, expired or not; None when there is none.
    @abstractmethod
    def _lock_holder(self, name: str) -> tuple[str, float] | None: ...
    @abstractmethod
    def _incr(self, key: str, amount: int) -> int: ...
    @abstractmethod
    def _join(
        self, group_id: str, index: int, size: int, result: Any, keep_until: float
    ) -> list[Any] | None: ...
    @abstractmethod
    def _kv_set(self, key: str, value: Any, until: float | None) -> None: ...
    @abstractmethod
    def _kv_get(self, key: str, now: float, default: Any) -> Any: ...
    @abstractmethod
    def _kv_delete(self, key: str) -> bool: ...
    @abstractmethod
    def _schedule_put(self, name: str, spec: dict[str, Any]) -> None: ...
    @abstractmethod
    def _schedule_state(self, name: str, state: dict[str, Any]) -> None: ...
    @abstractmethod
    def _schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]: ...
    @abstractmethod
    def _schedule_delete(self, name: str) -> bool: ...
