"""``postgresql://``: jobs in PostgreSQL, beside the application's own data.

Claims are one ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`` statement over a
partial index of PENDING rows, so claiming stays fast with millions of finished rows.
Job state changes write their event, and a change to PENDING sends a NOTIFY, from a
trigger in the same transaction; idle workers LISTEN and fall back to polling.

Tables live in a schema (``?schema=``, default ``conveyor``) created and migrated on
first use (``?migrate=false`` to require ``conveyor migrate``), under an advisory lock so
two processes never migrate at once. ``enqueue(..., connection=conn)`` writes on a
connection the caller holds: the job exists if and only if the caller's transaction
commits.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ...errors import BackendError
from ...ids import new_id
from ...records import (
    AuditEntry,
    Event,
    HeartbeatReply,
    JobQuery,
    JobRecord,
    Lease,
    Outcome,
    Run,
    WorkerInfo,
    read_worker,
    worker_entry,
)
from ...states import MAX_PRIORITY, MIN_PRIORITY, State
from ..base import TASK_SAMPLE, ClaimArgs, RevocationWatch
from ..common import SQL_COLUMNS, SQLVerbs, audit_entry, audit_row, brief, brief_json, dump
from ..listing import Dialect, page
from ..rollup import Minute, minutes
from .codec import job_columns, jsonb, jsonb_or_null, record
from .connection import CONNECT_TIMEOUT, PostgresConnection, guarded
from .driver import psycopg, sql
from .migrations import apply
from .watch import ListenWatch

log = logging.getLogger(__name__)


def settle_params(
    outcomes: list[Outcome], now: float, keep_until: float
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The ``settle`` statement's arrays for a batch of outcomes; the ids it is asked about,
    in order (ended, then retried); and the ids refused without asking: a second outcome
    of the same delivery (job and lease token) already in the batch (one UPDATE an outcome
    refused it too: the first one had ended the lease). Outcomes of two deliveries of one
    job (a stale lease and the current one) are both asked: only the current one matches."""
    seen: set[tuple[str, str]] = set()
    ends: list[Outcome] = []
    retries: list[Outcome] = []
    again: list[str] = []
    for o in outcomes:
        if (o.job_id, o.token) in seen:
            again.append(o.job_id)
            continue
        seen.add((o.job_id, o.token))
        (retries if o.state is State.RETRY else ends).append(o)
    params = {
        "now": now, "keep_until": keep_until,
        "ids": [o.job_id for o in ends], "tokens": [o.token for o in ends],
        "states": [o.state.value for o in ends],
        "results": [jsonb(o.result) if o.state is State.SUCCESS else None for o in ends],
        "errors": [jsonb_or_null(o.error) for o in ends], "briefs": [jsonb_or_null(brief(o.error)) for o in ends],
        "retry_ids": [o.job_id for o in retries], "retry_tokens": [o.token for o in retries],
        "run_ats": [o.run_at or now for o in retries], "retry_errors": [jsonb_or_null(o.error) for o in retries],
        "retry_briefs": [jsonb_or_null(brief(o.error)) for o in retries],
    }  # fmt: skip
    return params, [o.job_id for o in (*ends, *retries)], again


def _refused(asked: list[str], stored: list[Any], again: list[str]) -> list[str]:
    """The ids of a ``settle`` the store refused: asked about, not among the rows it returned
    (an id asked twice, for two deliveries, and stored once was refused once)."""
    done = Counter(row[0] for row in stored)
    refused = []
    for job_id in asked:
        if done[job_id]:
            done[job_id] -= 1
        else:
            refused.append(job_id)
    return refused + again


def _lease_arrays(leases: list[Lease]) -> dict[str, list[str]]:
    """Leases as the two arrays the one-statement lease queries unnest."""
    return {"ids": [x.job_id for x in leases], "tokens": [x.token for x in leases]}


#: Connections ``warm_up`` holds at once, so as many are warm before it returns: a process
#: child's main thread and its storer each take one at times and the pool hands them out
#: in turn. With one, the pool's second connection (opened while the first connected)
#: finished its warm-up during the child's first batch (traced: 3-7 ms after its first
#: claim, at load 10).
WARM_CONNECTIONS = 2
#: A count read that sums more delta rows than this folds them first (prune folds too).
FOLD_AFTER = 10_000
#: Every priority, for reading the oldest PENDING job of each (one index seek apiece).
PRIORITIES = list(range(MIN_PRIORITY, MAX_PRIORITY + 1))


class PostgresBackend(PostgresConnection):
    """Jobs in PostgreSQL; see the module docstring."""

    def __init__(self, url: str = "postgresql://localhost/postgres", **options: Any) -> None:
        super().__init__(url, **options)
        self._verbs = SQLVerbs(self._tx, self._q, record, {"channel": self.revoke_channel})
        #: Set by ``warm_up``: from then on, each new pooled connection is warmed up too.
        self._warming = False
        self._warmed: weakref.WeakSet[Any] = weakref.WeakSet()

    @guarded
    def warm_up(self) -> None:
        """Run a claim and an acknowledgement on a pooled connection, and on each one the
        pool opens from now on, before it is used (``_warm``). A fresh session's first
        claim and first acknowledgement took 10-50 ms more than later ones here (the
        catalog caches filled, the trigger function compiled and its statements planned):
        a first batch's time, when a process child drained 1,000 jobs in 0.3 s."""
        self._warming = True
        with contextlib.ExitStack() as held:
            for _ in range(WARM_CONNECTIONS):
                conn = held.enter_context(self._connection())
                if conn not in self._warmed:  # opened before, or its warm-up was refused
                    self._warm(conn)

    def _configure(self, conn: Any) -> None:
        if not self._warming:
            return
        try:
            self._warm(conn)
        except psycopg.OperationalError:
            raise  # the connection is broken: the pool opens another
        except Exception as exc:  # raised here, the pool would retry the connection forever
            # Refused: the connection still works, and ``warm_up`` (which warms its own
            # connection again) or the claim's own statement reports it to its caller.
            log.debug("warming up a connection failed: %s", exc)

    def _warm(self, conn: Any) -> None:
        """The statements of a claim, an acknowledgement and an idle worker's look for the
        next due job, on one job of a queue of its own, in a transaction rolled back: the
        job is never seen by another session and nothing is written. Run with rows (an
        acknowledgement of no job returns from the trigger at once, its statements never
        planned). Promote is run with a time before any job's, so that it holds no due
        job another worker could promote meanwhile."""
        now = self.now()
        queue = f"conveyor.warm-up.{uuid.uuid4().hex}"
        job = JobRecord(id=new_id(), task=queue, queue=queue, priority=0, payload=b"",
                        state=State.PENDING, run_at=now, created_at=now)  # fmt: skip
        with conn.transaction(force_rollback=True):
            params = {name: values[0] for name, values in job_columns([job]).items()}
            conn.execute(self._q["insert_one"], params)
            conn.execute(self._q["promote"], {"now": 0.0})
            claimed = self._claim_only(conn, [queue], queue, 1, now, now + 60).fetchall()
            outcomes = [
                Outcome(held.id, held.lease_token or "", State.SUCCESS)
                for held in map(record, claimed)
            ]
            conn.execute(self._q["settle"], settle_params(outcomes, now, now + 60)[0]).fetchall()
            conn.execute(self._q["next_due"], {"queues": [queue]}).fetchall()
        self._warmed.add(conn)

    @guarded
    def migrate(self) -> list[int]:
        """Apply pending migrations (under an advisory lock); returns the versions applied."""
        with psycopg.connect(self.conninfo, connect_timeout=CONNECT_TIMEOUT) as conn:
            return apply(conn, self.schema)

    # -- primitives ----------------------------------------------------------------------

    def enqueue_on(self, connection: Any, jobs: Sequence[JobRecord]) -> list[bool]:
        """Enqueue on the caller's connection, inside the caller's transaction."""
        self.pool  # noqa: B018 - the schema must exist before the caller's transaction uses it
        return self._insert_on(connection, jobs)

    @guarded
    def _insert(self, jobs: Sequence[JobRecord]) -> list[bool]:
        # One statement on an autocommit connection: it commits by itself, so a single
        # enqueue costs one round trip (a BEGIN/COMMIT pair would add two).
        with self._connection() as conn:
            return self._insert_on(conn, jobs)

    def _insert_on(self, conn: Any, jobs: Sequence[JobRecord]) -> list[bool]:
        if len(jobs) == 1:
            params = {name: values[0] for name, values in job_columns(jobs).items()}
            row = conn.execute(self._q["insert_one"], params).fetchone()
            return [row is not None]
        rows = conn.execute(self._q["insert"], job_columns(jobs)).fetchall()
        inserted = {row[0] for row in rows}
        # A repeated id within one batch is inserted once: only its first entry says so.
        answer = []
        for job in jobs:
            answer.append(job.id in inserted)
            inserted.discard(job.id)
        return answer

    @guarded
    def _get(self, job_ids: list[str]) -> dict[str, JobRecord]:
        with self._tx() as conn:
            rows = conn.execute(self._q["get"], {"ids": job_ids}).fetchall()
        return {row[0]: record(row) for row in rows}

    @guarded
    def _claim(
        self, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> list[JobRecord]:
        with self._tx() as conn:
            claimed = self._claim_on(conn, queues, worker, limit, now, lease_until)
            return [record(row) for row in claimed.fetchall()]

    def _claim_on(
        self, conn: Any, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> Any:
        """The claim's statements in ``conn``'s transaction (promote due delayed jobs, then
        claim: two statements, so the claim sees what was promoted); returns the claim's
        cursor. Each statement is sent with its own Sync, never as a pipeline: a worker
        frozen between them leaves its session 'idle in transaction', which the server
        ends after ``IDLE_IN_TRANSACTION_MS`` (the promoted and claimed rows freed), where
        a pipeline waiting for its Sync stays 'active', its row locks held for as long as
        the worker stays frozen (found by review: other workers skipped the due jobs)."""
        conn.execute(self._q["promote"], {"now": now})
        return self._claim_only(conn, queues, worker, limit, now, lease_until)

    def _claim_only(
        self, conn: Any, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> Any:
        return conn.execute(self._q["claim"], {"queues": queues, "worker": worker, "now": now,
                                               "lease_until": lease_until, "limit": limit,
                                               "prefix": self.lease_prefix})  # fmt: skip

    @guarded
    def _renew(self, leases: list[Lease], now: float, lease_until: float) -> HeartbeatReply:
        reply = HeartbeatReply()
        with self._connection() as conn:  # one autocommit statement: see queries.sql
            rows = conn.execute(self._q["renew"], {**_lease_arrays(leases), "lease_until": lease_until}).fetchall()  # fmt: skip
        renewed = dict(rows)
        for lease in leases:
            if lease.job_id not in renewed:
                reply.lost.add(lease.job_id)
            elif renewed[lease.job_id] == "terminate":
                reply.terminate.add(lease.job_id)
        return reply

    @guarded
    def _finish(self, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]:
        params, asked, again = settle_params(outcomes, now, keep_until)
        with self._connection() as conn:  # one statement, committed by the server on its own
            return _refused(asked, conn.execute(self._q["settle"], params).fetchall(), again)

    @guarded
    def _finish_and_claim(
        self, outcomes: list[Outcome], now: float, keep_until: float, claim: ClaimArgs
    ) -> tuple[list[str], list[JobRecord]]:
        """One transaction (the outcomes in one statement, promote, claim), so one commit
        (one WAL flush) for both halves, and neither without the other; its statements
        are not pipelined (see ``_claim_on``)."""
        params, asked, again = settle_params(outcomes, now, keep_until)
        with self._tx() as conn:
            refused = _refused(asked, conn.execute(self._q["settle"], params).fetchall(), again)
            claimed = self._claim_on(conn, *claim[:3], now, claim[3])
            return refused, [record(row) for row in claimed.fetchall()]

    @guarded
    def _release(self, leases: list[Lease], now: float, interrupted: dict[str, Any] | None) -> None:
        query = self._q["release" if interrupted is None else "release_interrupted"]
        with self._connection() as conn:  # one autocommit statement, as _renew
            conn.execute(query, {**_lease_arrays(leases), "now": now, "brief": brief_json(interrupted)})  # fmt: skip

    @guarded
    def _expire(self, leases: list[Lease]) -> None:
        with self._connection() as conn:
            conn.execute(self._q["expire"], _lease_arrays(leases))

    @guarded
    def _leases_of(self, prefix: str) -> list[Lease]:
        with self._tx() as conn:
            rows = conn.execute(self._q["leases_of"], {"prefix": prefix}).fetchall()
        return [Lease(job_id, token) for job_id, token in rows]

    @guarded
    def _worker_leases(self, worker_id: str) -> list[Lease]:
        with self._tx() as conn:
            rows = conn.execute(self._q["worker_leases"], {"worker": worker_id}).fetchall()
        return [Lease(job_id, token) for job_id, token in rows]

    @guarded
    def _next_due(self, queues: list[str]) -> float | None:
        with self._tx() as conn:
            row = conn.execute(self._q["next_due"], {"queues": queues}).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    @guarded
    def _set_progress(self, job_id: str, token: str, progress: dict[str, Any], now: float) -> bool:
        with self._tx() as conn:
            return (
                conn.execute(
                    self._q["set_progress"],
                    {"id": job_id, "token": token, "progress": jsonb_or_null(progress)},
                ).rowcount
                == 1
            )

    @guarded
    def _cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None:
        return self._verbs.cancel(job_id, terminate, reason, now, keep_until)

    @guarded
    def _rescue(
        self, now: float, max_lost: int, keep_until: float, causes: dict[str, str]
    ) -> list[str]:
        return self._verbs.rescue(now, max_lost, keep_until, causes)

    @guarded
    def _prune(self, now: float, limit: int, trim: bool) -> int:
        # Each statement on its own, committed by the server (autocommit), never a
        # transaction around them: a pruner frozen between two (SIGSTOP, a paused VM)
        # holds no lock that a worker's claim, ack or rescue, or another pruner, waits on.
        deleted = self._verbs.prune(now, limit, trim, on=self._connection)
        self._fold()  # the delete's count deltas
        if trim:  # the finishes' rollup deltas: no reader waits for the fold
            self._fold_runs()
        return deleted

    def _fold(self) -> None:
        """Fold the count deltas into one row per (queue, state), unless another session
        is folding (one statement: see ``fold_counts``)."""
        with self._connection() as conn:
            conn.execute(self._q["fold_counts"], {"lock": f"conveyor-fold:{self.schema}"})

    def _fold_runs(self) -> None:
        """Fold the rollups' deltas, one session at a time (the rollups older than
        ``ROLLUP_KEPT`` go with the other prune statements, ``SQLVerbs.prune``)."""
        with self._connection() as conn:
            conn.execute(self._q["fold_run_minutes"], {"lock": f"conveyor-fold-runs:{self.schema}"})

    @guarded
    def _run_rollup(self, since: int) -> dict[tuple[str, int], Minute]:
        return minutes(self._rows("run_rollup", {"since": since}))

    @guarded
    def _requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]:
        return self._verbs.requeue(job_id, now)

    @guarded
    def _rerun(self, job: JobRecord, now: float) -> bool:
        return self._verbs.rerun(job, now)

    @guarded
    def _purge(self, queue: str, reason: str, now: float, keep_until: float) -> int:
        return self._verbs.purge(queue, reason, now, keep_until)

    @guarded
    def _list(self, query: JobQuery) -> tuple[list[JobRecord], str | None]:
        table = f"{sql.Identifier(self.schema).as_string(None)}.jobs"
        dialect = Dialect("%s", "position(%s in payload) > 0", table)
        with self._tx() as conn:

            def read(text: str, params: list[Any]) -> list[Any]:
                return conn.execute(text.encode(), params).fetchall()

            rows, stopped = page(query, ", ".join(SQL_COLUMNS), dialect, read)
        return [record(row) for row in rows], stopped

    def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self._tx() as conn:
            return conn.execute(self._q[name], params or {}).fetchall()

    @guarded
    def _counts(self) -> dict[tuple[str, State], int]:
        rows = self._rows("counts")
        if sum(deltas for *_, deltas in rows) > FOLD_AFTER:  # producers alone never prune
            self._fold()
        return {(queue, State(state)): int(n) for queue, state, n, _ in rows if n > 0}

    @guarded
    def _recent_runs(self, since: float, limit: int) -> list[Run]:
        return [
            Run._make(row) for row in self._rows("recent_runs", {"since": since, "limit": limit})
        ]

    @guarded
    def _oldest_waiting(self, now: float) -> dict[str, float]:
        oldest = dict(self._rows("oldest_due_delayed", {"now": now}))
        for (queue,) in self._rows("waiting_queues"):
            (pending,) = self._rows("oldest_pending", {"queue": queue, "priorities": PRIORITIES})[0]
            if pending is not None:
                oldest[queue] = min(pending, oldest.get(queue, pending))
        return oldest

    @guarded
    def _waiting_tasks(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for (queue,) in self._rows("waiting_queues"):
            rows = self._rows("next_tasks", {"queue": queue, "sample": TASK_SAMPLE})
            found[queue] = {task for (task,) in rows}
        for queue, task in self._rows("next_delayed_tasks", {"sample": TASK_SAMPLE}):
            found.setdefault(queue, set()).add(task)
        return found

    @guarded
    def _expired_waiting(self, queue: str, now: float, sample: int) -> tuple[int, int]:
        params = {"queue": queue, "now": now, "sample": sample}
        ((expired, read),) = self._rows("expired_waiting", params)
        return expired, read

    @guarded
    def _set_paused(self, queue: str, paused: bool) -> None:
        with self._tx() as conn:
            conn.execute(self._q["pause" if paused else "resume"], {"queue": queue})
            if not paused:
                conn.execute("SELECT pg_notify(%s, %s)", (self.channel, queue))

    @guarded
    def _paused(self) -> set[str]:
        return {row[0] for row in self._rows("paused")}

    @guarded
    def _worker_put(self, info: WorkerInfo) -> None:
        with self._tx() as conn:
            conn.execute(
                self._q["worker_put"],
                {
                    "id": info.id,
                    "last_seen": info.last_seen,
                    "info": dump(worker_entry(info)),
                },
            )

    @guarded
    def _worker_stop(self, worker_id: str, now: float) -> None:
        with self._tx() as conn:
            conn.execute(self._q["worker_stop"], {"id": worker_id, "now": now})

    @guarded
    def _worker_delete(self, worker_id: str) -> None:
        with self._tx() as conn:
            conn.execute(self._q["worker_delete"], {"id": worker_id})

    @guarded
    def _stale_workers(self, before: float) -> list[WorkerInfo]:
        return [read_worker(row[0]) for row in self._rows("stale_workers", {"before": before})]

    @guarded
    def _live_workers(self, since: float) -> list[WorkerInfo]:
        return [read_worker(row[0]) for row in self._rows("live_workers", {"since": since})]

    @guarded
    def _worker_entries(self, ids: list[str]) -> list[WorkerInfo]:
        return [read_worker(row[0]) for row in self._rows("worker_entries", {"ids": ids})]

    @guarded
    def _events(self, after: int, limit: int) -> list[Event]:
        return [Event(*row) for row in self._rows("events", {"after": after, "limit": limit})]

    @guarded
    def _put_event(self, now: float, kind: str, queue: str, subject: str) -> None:
        with self._tx() as conn:
            params = {"time": now, "kind": kind, "queue": queue, "subject": subject}
            conn.execute(self._q["event_put"], params)

    @guarded
    def _audit_put(self, entry: AuditEntry) -> int:
        return int(
            self._rows("audit_put", {**audit_row(entry), "detail": dump(entry.detail)})[0][0]
        )

    @guarded
    def _audit_read(self, before: int | None, limit: int, target: str | None) -> list[AuditEntry]:
        rows = self._rows("audit_read", {"before": before, "limit": limit, "target": target})
        return [audit_entry(row) for row in rows]

    @guarded
    def _lock(self, name: str, owner: str, now: float, until: float) -> bool:
        with self._connection() as conn:  # autocommit: a frozen holder keeps no row locked
            params = {"name": name, "owner": owner, "now": now, "until": until}
            return conn.execute(self._q["lock"], params).fetchone() is not None

    @guarded
    def _unlock(self, name: str, owner: str) -> bool:
        with self._connection() as conn:
            return conn.execute(self._q["unlock"], {"name": name, "owner": owner}).rowcount == 1

    @guarded
    def _lock_holder(self, name: str) -> tuple[str, float] | None:
        rows = self._rows("lock_holder", {"name": name})
        return (rows[0][0], rows[0][1]) if rows else None

    @guarded
    def _incr(self, key: str, amount: int) -> int:
        return int(self._rows("incr", {"key": key, "amount": amount})[0][0])

    @guarded
    def _kv_set(self, key: str, value: Any, until: float | None) -> None:
        with self._tx() as conn:
            conn.execute(
                self._q["kv_set"],
                {"key": key, "value": jsonb(value), "until": until},
            )

    @guarded
    def _kv_get(self, key: str, now: float, default: Any) -> Any:
        rows = self._rows("kv_get", {"key": key, "now": now})
        return rows[0][0] if rows else default

    @guarded
    def _kv_delete(self, key: str) -> bool:
        with self._tx() as conn:
            return conn.execute(self._q["kv_delete"], {"key": key}).rowcount == 1

    @guarded
    def _join(
        self, group_id: str, index: int, size: int, result: Any, keep_until: float
    ) -> list[Any] | None:
        with self._tx() as conn:
            conn.execute(self._q["join_lock"], {"group_id": group_id})
            conn.execute(self._q["join"], {"group_id": group_id, "idx": index,
                                           "result": jsonb(result), "keep_until": keep_until})  # fmt: skip
            rows = conn.execute(self._q["group_results"], {"group_id": group_id}).fetchall()
        return [row[0] for row in rows] if len(rows) >= size else None

    @guarded
    def _schedule_put(self, name: str, spec: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(self._q["schedule_put"], {"name": name, "spec": dump(spec)})

    @guarded
    def _schedule_state(self, name: str, state: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(self._q["schedule_state"], {"name": name, "state": dump(state)})

    @guarded
    def _schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        return {name: (spec, state) for name, spec, state in self._rows("schedules")}

    @guarded
    def _schedule_delete(self, name: str) -> bool:
        with self._tx() as conn:
            return conn.execute(self._q["schedule_delete"], {"name": name}).rowcount == 1

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """LISTEN on the schema's channel; any notification (or the timeout) returns.
        Notifications can be lost (a reconnect): callers poll at least every timeout."""
        if timeout <= 0:
            return
        try:
            conn = getattr(self._listener, "conn", None)
            if conn is None or conn.closed:
                self.pool  # noqa: B018 - the schema (and its trigger) must exist
                conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self._listener.conn = conn
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except (psycopg.Error, BackendError):
            if getattr(self._listener, "conn", None) is not None:
                self._listener.conn.close()
                self._listener.conn = None

    def watch_revocations(self) -> RevocationWatch:
        return ListenWatch(self)
