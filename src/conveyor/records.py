"""The values the backend contract speaks in: job records, outcomes, leases, workers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, NamedTuple

from .states import State


@dataclass(slots=True)
class JobRecord:
    """One invocation of a task: the queued message, the stored record and the dashboard row.

    Times are POSIX seconds from the backend's clock. ``payload`` is the encoded envelope
    (``serialization.encode_payload``); the backend never looks inside it.
    """

    id: str
    task: str
    queue: str
    priority: int
    payload: bytes
    state: State
    run_at: float  # claimable from this time on (eta, retry delay, or enqueue time)
    created_at: float
    max_retries: int = 0
    expires_at: float | None = None
    attempt: int = 0  # how many times a worker started it
    lost_leases: int = 0  # deliveries whose worker died; bounded by max_lost_leases
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    lease_token: str | None = None
    lease_until: float | None = None
    revoke: str | None = None  # None, "revoke" or "terminate": durable cancellation request
    progress: dict[str, Any] | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    parent_id: str | None = None
    root_id: str | None = None
    workflow_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    keep_until: float | None = None  # finished records are pruned after this time

    @property
    def lease(self) -> Lease:
        """This delivery's lease (an empty token when the job is not leased)."""
        return Lease(self.id, self.lease_token or "")

    def __reduce__(self) -> tuple[type[JobRecord], tuple[Any, ...]]:
        # Pickled as its fields in order, read in C. A pool child pickles the records of
        # every batch it claims for its worker; the dataclass default (field names and
        # values gathered in Python) took 7.5 us and 546 bytes a job, 88 us cold (an idle
        # child's pickup), against 5.5 us and 247 bytes, 63 us cold; unpickling 5.7 -> 2.9.
        return JobRecord, _job_fields(self)


_job_fields = attrgetter(*(f.name for f in fields(JobRecord)))


@dataclass(slots=True, frozen=True)
class Lease:
    """Proof that a worker holds a job: the token changes on every claim (fencing)."""

    job_id: str
    token: str


@dataclass(slots=True)
class Outcome:
    """How one delivery of a job ended, as reported by the worker that held its lease.

    ``state`` is SUCCESS, FAILURE, REVOKED, or RETRY (run again ``delay`` seconds after
    the backend records it; the backend fills ``run_at`` from its own clock).
    """

    job_id: str
    token: str
    state: State
    result: Any = None
    error: dict[str, Any] | None = None
    delay: float = 0.0
    run_at: float | None = None

    def __reduce__(self) -> tuple[type[Outcome], tuple[Any, ...]]:
        # As JobRecord's: a pool child pickles every outcome it stores for its worker;
        # the dataclass default sets each field through object.__setattr__ when read.
        return Outcome, _outcome_fields(self)


_outcome_fields = attrgetter(*(f.name for f in fields(Outcome)))


@dataclass(slots=True)
class HeartbeatReply:
    """What a heartbeat learns: jobs to stop (revoked with terminate) and leases it lost."""

    terminate: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)


@dataclass(slots=True, frozen=True)
class Revocation:
    """What a revoke did: returned by ``Job.revoke``, ``control.cancel_job`` and so
    ``conveyor cancel``.

    ``outcome`` is ``"revoked"`` (the job was waiting: it ends REVOKED and never runs),
    ``"terminating"`` (it is running and its worker is stopping it), ``"flagged"`` (it is
    running, revoked without terminate: the task sees it through ``self.is_revoked()``,
    else it runs to the end), ``"too_late"`` (it had already finished: ``state`` is how,
    and its record says the revoke came late) or ``"already_revoked"``. ``was`` is the
    state the revoke found the job in, ``state`` the one it left it in; ``message`` says
    all this in a sentence.
    """

    job_id: str
    was: State
    state: State
    outcome: str
    message: str

    @property
    def took_effect(self) -> bool:
        """False when the revoke changed nothing: the job had finished or was revoked."""
        return self.outcome in ("revoked", "terminating", "flagged")


@dataclass(slots=True)
class WorkerInfo:
    id: str
    name: str
    host: str
    pid: int
    queues: list[str]
    pool: str
    concurrency: int
    version: str
    tasks: list[str]
    started_at: float
    last_seen: float = 0.0
    running: list[str] = field(default_factory=list)
    #: The worker's wall clock minus the backend's, at its last heartbeat (seconds).
    clock_skew: float = 0.0
    #: How often it heartbeats (its app's setting), so others can tell when it is overdue;
    #: the setting's default for an entry written by an older worker.
    heartbeat_interval: float = 2.0
    #: Resident memory of the worker's own process at its last heartbeat, in bytes (read
    #: from /proc on Linux; None elsewhere, and from an older worker). A process pool's
    #: children are not counted.
    memory_rss: int | None = None
    #: When it stopped cleanly (unregistered), on the backend's clock; None while it runs
    #: or when it died. Its entry is kept (``WORKER_KEPT``) so the jobs it ran name it.
    stopped_at: float | None = None
    #: What names the worker's host and pid namespace (``worker/deadpids.py``): a worker
    #: whose ``host_id`` is another's own can tell, from its pid, whether it is alive.
    #: None from an older worker (then only its lease tells).
    host_id: str | None = None
    #: When its process started, as its host's kernel tells (pid reuse cannot repeat it).
    proc_start: str | None = None


_WORKER_FIELDS = frozenset(f.name for f in fields(WorkerInfo))


def worker_entry(info: WorkerInfo) -> dict[str, Any]:
    """A worker's entry as stored. Fields at None are left out: a reader of an earlier
    version knows none of the optional fields added since, and reads the rest."""
    return {key: value for key, value in dataclasses.asdict(info).items() if value is not None}


def read_worker(entry: Mapping[str, Any]) -> WorkerInfo:
    """A stored worker entry; keys a later version wrote are ignored, so workers can be
    upgraded before the processes that read them."""
    return WorkerInfo(**{key: value for key, value in entry.items() if key in _WORKER_FIELDS})


@dataclass(slots=True, frozen=True)
class Event:
    """One entry of the backend's event stream, for live views: a job's state change or
    progress (``job.state``, ``job.progress``), a queue paused, resumed or purged
    (``queue.*``: ``job_id``, ``task`` and ``state`` empty), a worker come or gone
    (``worker.online``, ``worker.offline``: ``job_id`` holds the worker's id)."""

    seq: int
    time: float
    kind: str
    job_id: str
    queue: str
    task: str
    state: str


@dataclass(slots=True, frozen=True)
class AuditEntry:
    """One change made through the API: who (the token), what, to what, when, and how
    it ended. ``seq`` is 0 until stored."""

    seq: int
    time: float
    #: The token's name ("local" for a tokenless loopback call, "service" with auth off:
    #: ``web.auth.LOCAL_ACTOR``, ``SERVICE_ACTOR``, for the API and the dashboard alike).
    actor: str
    #: The token's id ("" without a token).
    actor_id: str
    #: What was done: the route's method and path template, e.g. ``POST /jobs/{job_id}/cancel``.
    action: str
    #: What it was done to (a job id, a queue or schedule name), or "".
    target: str
    #: "ok", or the error code the caller was answered with.
    outcome: str
    #: The HTTP status answered.
    status: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class JobQuery:
    """A filter for listing jobs. Results come newest first by id (``before`` is the
    cursor), or oldest first (``after`` is)."""

    states: list[State] | None = None
    queues: list[str] | None = None
    tasks: list[str] | None = None
    #: Ids of the workers that ran the job (its last delivery's, as ``JobRecord.worker``).
    workers: list[str] | None = None
    created_after: float | None = None
    created_before: float | None = None
    #: Text that must appear in the job's encoded arguments.
    text: str | None = None
    before: str | None = None
    #: Only ids above this one (the cursor of an ``oldest_first`` list).
    after: str | None = None
    #: Oldest first (ascending ids) instead of newest first; as cheap: the same indexes.
    oldest_first: bool = False
    limit: int = 50
    #: Examine at most this many jobs (those matching the most selective indexed filter,
    #: newest first) looking for ``limit`` matches; None: no bound. See ``list_page``.
    scan: int | None = None


class Run(NamedTuple):
    """A job that finished after running (its last delivery), for throughput and runtimes.

    A named tuple, not a frozen dataclass: a dashboard page builds one per run of the
    last hour (thousands), and a tuple is built from a row four times faster."""

    queue: str
    task: str
    state: str
    started_at: float
    finished_at: float
