"""Small pieces every backend shares: attempt log entries, standard error records, the
guard that turns a driver's errors into ``BackendError``, and the transitions whose SQL
is the same on SQLite and PostgreSQL (``SQLVerbs``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from ..records import AuditEntry, JobQuery, JobRecord
from ..states import State
from .base import (
    AUDIT_KEPT,
    EVENTS_KEPT,
    Backend,
    not_redelivered_error,
    worker_died_error,
    worker_lost_error,
)
from .rollup import ROLLUP_KEPT, tally

T = TypeVar("T")

#: The columns of the ``jobs`` table in SQLite and PostgreSQL alike, in the order the named
#: queries' ``{columns}`` list them and each codec reads a row.
SQL_COLUMNS = [
    "id", "task", "queue", "priority", "payload", "state", "run_at", "created_at", "max_retries",
    "expires_at", "attempt", "lost_leases", "started_at", "finished_at", "worker", "lease_token",
    "lease_until", "revoke", "progress", "result", "error", "attempts", "parent_id", "root_id",
    "workflow_id", "headers", "keep_until",
]  # fmt: skip

#: The attempt-history state of a manual retry.
REQUEUED = "REQUEUED"


def attempt_entry(
    job: JobRecord, now: float, state: State, error: dict[str, Any] | None
) -> dict[str, Any]:
    """One line of a job's attempt history, written when a delivery ends."""
    return {
        "attempt": job.attempt,
        "worker": job.worker,
        "started_at": job.started_at,
        "finished_at": now,
        "state": state.value,
        "error": brief(error),
    }


def brief(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """An error as a job's attempt history keeps it: its type and message (no traceback)."""
    return None if error is None else {"type": error.get("type"), "message": error.get("message")}


def dump(value: Any) -> str | None:
    """JSON text for a column or a script argument; None (NULL) stays None."""
    return None if value is None else orjson.dumps(value).decode()


def brief_json(error: dict[str, Any] | None) -> str | None:
    return dump(brief(error))


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a driver's errors into ``BackendError`` (workers log and retry on it). Which
    errors are the driver's, and what each means, the backend says in ``driver_error``."""

    @functools.wraps(fn)
    def wrapper(self: Backend, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            error = self.driver_error(exc)
            if error is None:
                raise
            raise error from exc

    return wrapper


def requeued_entry(job: JobRecord, now: float) -> dict[str, Any]:
    """The history line a manual retry leaves; retries are counted from the last one."""
    return {"attempt": job.attempt, "worker": None, "started_at": None, "finished_at": now,
            "state": REQUEUED, "error": None}  # fmt: skip


#: The error types of a workflow step stored as never run because a step before it failed
#: (``workflows.engine.abort``): a chain's later step, a chord's callback.
ABORTED = ("WorkflowAborted", "ChordError")


def aborted_step(job: JobRecord) -> bool:
    """Whether ``job`` is a workflow step stored as never run because a step before it
    failed: it has no input to run with, and runs when that step is retried and succeeds."""
    return (
        job.state in (State.FAILURE, State.REVOKED)
        and job.started_at is None
        and (job.error or {}).get("type") in ABORTED
    )


def rerun_entry(job: JobRecord, now: float) -> dict[str, Any]:
    """The history line of an aborted step that runs after all: a requeue that keeps
    why it had not run."""
    return requeued_entry(job, now) | {"error": brief(job.error)}


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
        and (query.after is None or job.id > query.after)
        and (query.created_after is None or job.created_at >= query.created_after)
        and (query.created_before is None or job.created_at < query.created_before)
        and (query.text is None or query.text.encode() in job.payload)
        and (query.states is None or job.state in query.states)
        and (query.queues is None or job.queue in query.queues)
        and (query.tasks is None or job.task in query.tasks)
        and (query.workers is None or job.worker in query.workers)
    )


#: The attempt entry of a delivery whose lease expired, its death unseen.
LEASE_EXPIRED_ENTRY: dict[str, Any] = {"type": "LeaseExpired", "message": None}


def lost_delivery_end(
    revoked: bool, acks_early: bool, lost_after: int, max_lost: int, cause: str | None = None
) -> tuple[State, dict[str, Any]] | None:
    """How a job whose lease expired ends, or None when it goes back to its queue.

    ``lost_after`` counts this lost delivery. Revoked: REVOKED. Its task acknowledges on
    start (``acks_late=False``): FAILURE, not run again. ``max_lost`` workers lost:
    FAILURE ("worker lost", naming ``cause``: what the worker saw of this death). Every
    backend's rescue asks this one function (Redis's script mirrors it).
    """
    if revoked:
        return State.REVOKED, revoked_error("revoked")
    if acks_early:
        return State.FAILURE, not_redelivered_error()
    if lost_after >= max_lost:
        return State.FAILURE, worker_lost_error(lost_after, cause)
    return None


def lost_entry(cause: str | None) -> dict[str, Any]:
    """The attempt entry of a lost delivery that goes back to its queue."""
    return worker_died_error(cause) if cause else LEASE_EXPIRED_ENTRY


@dataclass(frozen=True)
class SQLVerbs:
    """The primitives whose SQL reads the same on SQLite and PostgreSQL: each backend's
    named queries of the same names, run in its own write transaction (``write``) and
    read back by its own codec (``record``). Both drivers' connections ``execute`` with a
    dict of parameters and answer a cursor with ``rowcount`` and ``fetchone``."""

    write: Callable[[], AbstractContextManager[Any]]
    q: Mapping[str, str]
    record: Callable[[Any], JobRecord]
    #: Parameters every revoke statement also takes (where it signals running jobs).
    revoke_params: Mapping[str, Any]

    def cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None:
        with self.write() as conn:
            found = conn.execute(self.q["cancel_find"], {"id": job_id}).fetchone()
            if found is None:
                return None
            was = State(found[0])
            error = dump(revoked_error(reason))
            for name, params in revoke_statements(was, job_id, terminate, error, now, keep_until):
                conn.execute(self.q[name], {**params, **self.revoke_params})
            row = conn.execute(self.q["get_one"], {"id": job_id}).fetchone()
        return self.record(row), was

    def rescue(
        self, now: float, max_lost: int, keep_until: float, causes: Mapping[str, str]
    ) -> list[str]:
        touched, ended = [], []
        with self.write() as conn:
            for job_id, revoke, lost, acks_early, queue, started_at in conn.execute(
                self.q["expired_leases"], {"now": now}
            ).fetchall():
                params: dict[str, Any] = {"id": job_id, "now": now, "keep_until": keep_until}
                cause = causes.get(job_id)
                ending = lost_delivery_end(
                    bool(revoke), bool(acks_early), lost + 1, max_lost, cause
                )
                if ending is not None:
                    state, error = ending
                    params.update(state=state.value, error=dump(error), brief=brief_json(error))
                    conn.execute(self.q["end_lost"], params)
                    ended.append((queue, state.value, started_at))
                else:
                    params.update(brief=brief_json(lost_entry(cause)))
                    conn.execute(self.q["requeue_lost"], params)
                touched.append(job_id)
            add_runs(conn, self.q, ended, now)
        return touched

    def prune(
        self,
        now: float,
        limit: int,
        trim: bool = True,
        on: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> int:
        """The prune statements, run on ``on()`` (default: ``write``, one transaction for
        all of them). PostgreSQL passes its autocommit connection: each statement then
        commits alone, so a pruner frozen between two holds no lock (docs/postgres.md).
        ``trim``: the four trims too (``Backend.prune``)."""
        with (on or self.write)() as conn:
            deleted = conn.execute(self.q["prune_jobs"], {"now": now, "limit": limit}).rowcount
            conn.execute(self.q["prune_events"], {"keep": EVENTS_KEPT})
            if trim:
                conn.execute(self.q["prune_audit"], {"keep": AUDIT_KEPT})
                conn.execute(self.q["prune_kv"], {"now": now})
                conn.execute(self.q["prune_groups"], {"now": now})
                conn.execute(self.q["prune_run_minutes"], {"horizon": now - ROLLUP_KEPT})
        return int(deleted)

    def requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]:
        with self.write() as conn:
            changed = conn.execute(self.q["requeue"], {"id": job_id, "now": now}).rowcount == 1
            row = conn.execute(self.q["get_one"], {"id": job_id}).fetchone()
        return (None if row is None else self.record(row)), changed

    def rerun(self, job: JobRecord, now: float) -> bool:
        """``Backend._rerun``: the requeue and the new input in one transaction."""
        with self.write() as conn:
            row = conn.execute(self.q["get_one"], {"id": job.id}).fetchone()
            stored = None if row is None else self.record(row)
            if stored is None or not aborted_step(stored):
                return False
            if conn.execute(self.q["requeue"], {"id": job.id, "now": now}).rowcount != 1:
                return False  # requeued meanwhile (PostgreSQL: the row's lock, then its state)
            params = {"id": job.id, "payload": job.payload, "headers": dump(job.headers),
                      "expires_at": job.expires_at,
                      "attempts": dump([*stored.attempts, rerun_entry(stored, now)])}  # fmt: skip
            conn.execute(self.q["rerun"], params)
        return True

    def purge(self, queue: str, reason: str, now: float, keep_until: float) -> int:
        """In batches (``purge_batch``), each its own transaction: no long lock on a big
        queue."""
        error = dump(revoked_error(reason))
        params = {"queue": queue, "now": now, "keep_until": keep_until, "error": error}
        total = 0
        while True:
            with self.write() as conn:
                done = int(conn.execute(self.q["purge_batch"], params).rowcount)
            total += done
            if done == 0:
                return total


def add_runs(
    conn: Any, q: Mapping[str, str], ended: Sequence[tuple[str, str, float | None]], now: float
) -> None:
    """Add the deliveries that ended jobs at ``now`` (queue, final state, started_at) to
    the per-minute rollups (``rollup_add``), in the caller's transaction: one statement
    for the batch."""
    if ended:
        rows = [[m, queue, b, n, f] for (queue, m, b), (n, f) in tally(ended, now).items()]
        conn.execute(q["rollup_add"], {"rows": dump(rows)})


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry's columns, as the SQL backends' ``audit_put`` takes them (not detail)."""
    return {"time": entry.time, "actor": entry.actor, "actor_id": entry.actor_id,
            "action": entry.action, "target": entry.target, "outcome": entry.outcome,
            "status": entry.status}  # fmt: skip


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    """An ``audit_read`` row (its detail is JSON text)."""
    seq, time, actor, actor_id, action, target, outcome, status, detail = row
    return AuditEntry(
        seq, time, actor, actor_id, action, target, outcome, status, orjson.loads(detail)
    )
