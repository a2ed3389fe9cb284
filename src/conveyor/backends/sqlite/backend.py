"""``sqlite:///path``: the embedded default. One file, nothing to install.

Safe for several processes on one machine: WAL journal, a busy timeout, ``BEGIN
IMMEDIATE`` for every multi-statement write (so no transaction ever upgrades from read
to write and deadlocks), and claims as a single ``UPDATE ... RETURNING``. One connection
per thread and per process (connections are never shared across a fork).

Durability: ``synchronous=NORMAL`` by default, which survives any process crash; a power
loss may drop the last commits. ``?synchronous=full`` fsyncs every commit instead.

Idle workers notice other processes' commits through ``PRAGMA data_version``, polled
every ``WAKE_POLL`` seconds; that read takes no lock and costs microseconds.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import orjson

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
from ..common import SQL_COLUMNS, SQLVerbs, audit_entry, audit_row, brief_json, dump
from ..listing import Dialect, page
from ..rollup import Minute, minute_of, minutes
from ..sqlfiles import named_queries
from .codec import SELECT, record
from .connection import SQLiteConnection

WAKE_POLL = 0.002
#: Every priority, for reading the oldest PENDING job of each (one index seek apiece).
PRIORITIES = dump(list(range(MIN_PRIORITY, MAX_PRIORITY + 1)))
#: How often a worker's revocation watch reads the count of terminations (seconds): one
#: indexed read of a single row, on its own connection.
REVOKE_POLL = 0.05
#: The counter bumped by every revoke with terminate of a running job.
TERMINATIONS = "conveyor:terminations"
#: The job list's SQL (``backends.listing``).
DIALECT = Dialect("?", "instr(payload, ?) > 0", name_index=True)
#: The named queries, ``{columns}`` spelled out.
_Q = {
    name: text.replace("{columns}", ", ".join(SQL_COLUMNS))
    for name, text in named_queries("sqlite").items()
}


@functools.lru_cache(maxsize=64)
def _claim_sql(queue_count: int) -> str:
    branches = " UNION ALL ".join(
        _Q["claim_branch"].replace("{i}", str(i)) for i in range(queue_count)
    )
    return _Q["claim"].replace("{branches}", branches)


class SQLiteBackend(SQLiteConnection):
    """Jobs in one SQLite file; see the module docstring."""

    def __init__(self, url: str = "sqlite:///./conveyor.db", **options: Any) -> None:
        super().__init__(url, **options)
        self._verbs = SQLVerbs(self._write, _Q, record, {"key": TERMINATIONS})

    # -- primitives ----------------------------------------------------------------------

    def _insert(self, jobs: Sequence[JobRecord]) -> list[bool]:
        inserted = []
        with self._write() as conn:
            for job in jobs:
                cur = conn.execute(_Q["insert"], {
                    "id": job.id, "task": job.task, "queue": job.queue, "priority": job.priority,
                    "payload": job.payload, "state": job.state.value, "run_at": job.run_at,
                    "created_at": job.created_at, "max_retries": job.max_retries,
                    "expires_at": job.expires_at, "parent_id": job.parent_id, "root_id": job.root_id,
                    "workflow_id": job.workflow_id, "headers": dump(job.headers),
                    "error": dump(job.error), "finished_at": job.finished_at, "keep_until": job.keep_until,
                })  # fmt: skip
                inserted.append(cur.rowcount == 1)
        return inserted

    def _get(self, job_ids: list[str]) -> dict[str, JobRecord]:
        rows = self._read(
            f"{SELECT} WHERE id IN (SELECT value FROM json_each(?))", (dump(job_ids),)
        )
        return {row[0]: record(row) for row in rows}

    def _claim(
        self, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> list[JobRecord]:
        params = _claim_params(queues, worker, limit, now, lease_until, self.lease_prefix)
        with self._write() as conn:
            return _claim_on(conn, params, len(queues))

    def _renew(self, leases: list[Lease], now: float, lease_until: float) -> HeartbeatReply:
        reply = HeartbeatReply()
        with self._write() as conn:
            for lease in leases:
                row = conn.execute(
                    _Q["renew"],
                    {"id": lease.job_id, "token": lease.token, "lease_until": lease_until},
                ).fetchone()
                if row is None:
                    reply.lost.add(lease.job_id)
                elif row[0] == "terminate":
                    reply.terminate.add(lease.job_id)
        return reply

    def _finish(self, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]:
        with self._write() as conn:
            return _finish_on(conn, outcomes, now, keep_until)

    def _finish_and_claim(
        self, outcomes: list[Outcome], now: float, keep_until: float, claim: ClaimArgs
    ) -> tuple[list[str], list[JobRecord]]:
        """One write transaction, so one commit for both."""
        queues, worker, limit, lease_until = claim
        params = _claim_params(queues, worker, limit, now, lease_until, self.lease_prefix)
        with self._write() as conn:
            refused = _finish_on(conn, outcomes, now, keep_until)
            return refused, _claim_on(conn, params, len(queues))

    def _release(self, leases: list[Lease], now: float, interrupted: dict[str, Any] | None) -> None:
        query = _Q["release" if interrupted is None else "release_interrupted"]
        brief = brief_json(interrupted)
        with self._write() as conn:
            conn.executemany(
                query,
                [{"id": x.job_id, "token": x.token, "now": now, "brief": brief} for x in leases],
            )

    def _expire(self, leases: list[Lease]) -> None:
        with self._write() as conn:
            conn.executemany(
                _Q["expire"], [{"id": lease.job_id, "token": lease.token} for lease in leases]
            )

    def _leases_of(self, prefix: str) -> list[Lease]:
        return [Lease(i, t) for i, t in self._read(_Q["leases_of"], {"prefix": prefix})]

    def _worker_leases(self, worker_id: str) -> list[Lease]:
        return [Lease(i, t) for i, t in self._read(_Q["worker_leases"], {"worker": worker_id})]

    def _next_due(self, queues: list[str]) -> float | None:
        rows = self._read(_Q["next_due"], {"queues": dump(queues)})
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def _set_progress(self, job_id: str, token: str, progress: dict[str, Any], now: float) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                _Q["set_progress"], {"id": job_id, "token": token, "progress": dump(progress)}
            )
        return cur.rowcount == 1

    def _cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None:
        return self._verbs.cancel(job_id, terminate, reason, now, keep_until)

    def _rescue(
        self, now: float, max_lost: int, keep_until: float, causes: dict[str, str]
    ) -> list[str]:
        return self._verbs.rescue(now, max_lost, keep_until, causes)

    def _prune(self, now: float, limit: int, trim: bool) -> int:
        return self._verbs.prune(now, limit, trim)

    def _list(self, query: JobQuery) -> tuple[list[JobRecord], str | None]:
        rows, stopped = page(query, ", ".join(SQL_COLUMNS), DIALECT, self._read)
        return [record(row) for row in rows], stopped

    def _requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]:
        return self._verbs.requeue(job_id, now)

    def _rerun(self, job: JobRecord, now: float) -> bool:
        return self._verbs.rerun(job, now)

    def _purge(self, queue: str, reason: str, now: float, keep_until: float) -> int:
        return self._verbs.purge(queue, reason, now, keep_until)

    def _recent_runs(self, since: float, limit: int) -> list[Run]:
        return [
            Run._make(row)
            for row in self._read(_Q["recent_runs"], {"since": since, "limit": limit})
        ]

    def _run_rollup(self, since: int) -> dict[tuple[str, int], Minute]:
        return minutes(self._read(_Q["run_rollup"], {"since": since}))

    def _waiting_tasks(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for (queue,) in self._read(_Q["waiting_queues"]):
            rows = self._read(_Q["next_tasks"], {"queue": queue, "sample": TASK_SAMPLE})
            found[queue] = {task for (task,) in rows}
        for queue, task in self._read(_Q["next_delayed_tasks"], {"sample": TASK_SAMPLE}):
            found.setdefault(queue, set()).add(task)
        return found

    def _expired_waiting(self, queue: str, now: float, sample: int) -> tuple[int, int]:
        params = {"queue": queue, "now": now, "sample": sample}
        ((expired, read),) = self._read(_Q["expired_waiting"], params)
        return expired, read

    def _oldest_waiting(self, now: float) -> dict[str, float]:
        oldest = dict(self._read(_Q["oldest_due_delayed"], {"now": now}))
        for (queue,) in self._read(_Q["waiting_queues"]):
            (pending,) = self._read(
                _Q["oldest_pending"], {"queue": queue, "priorities": PRIORITIES}
            )[0]
            if pending is not None:
                oldest[queue] = min(pending, oldest.get(queue, pending))
        return oldest

    def _counts(self) -> dict[tuple[str, State], int]:
        return {(queue, State(state)): n for queue, state, n in self._read(_Q["counts"])}

    def _set_paused(self, queue: str, paused: bool) -> None:
        with self._write() as conn:
            conn.execute(_Q["pause" if paused else "resume"], {"queue": queue})

    def _paused(self) -> set[str]:
        return {row[0] for row in self._read(_Q["paused"])}

    def _worker_put(self, info: WorkerInfo) -> None:
        data = worker_entry(info)
        with self._write() as conn:
            conn.execute(
                _Q["worker_put"], {"id": info.id, "last_seen": info.last_seen, "info": dump(data)}
            )

    def _worker_stop(self, worker_id: str, now: float) -> None:
        with self._write() as conn:
            conn.execute(_Q["worker_stop"], {"id": worker_id, "now": repr(now)})

    def _worker_delete(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(_Q["worker_delete"], {"id": worker_id})

    def _stale_workers(self, before: float) -> list[WorkerInfo]:
        return self._worker_rows(_Q["stale_workers"], {"before": before})

    def _live_workers(self, since: float) -> list[WorkerInfo]:
        return self._worker_rows(_Q["live_workers"], {"since": since})

    def _worker_entries(self, ids: list[str]) -> list[WorkerInfo]:
        return self._worker_rows(_Q["worker_entries"], {"ids": orjson.dumps(ids).decode()})

    def _worker_rows(self, sql: str, params: dict[str, Any]) -> list[WorkerInfo]:
        return [read_worker(orjson.loads(info)) for (info,) in self._read(sql, params)]

    def _events(self, after: int, limit: int) -> list[Event]:
        return [Event(*row) for row in self._read(_Q["events"], {"after": after, "limit": limit})]

    def _put_event(self, now: float, kind: str, queue: str, subject: str) -> None:
        with self._write() as conn:
            conn.execute(
                _Q["event_put"], {"time": now, "kind": kind, "queue": queue, "subject": subject}
            )

    def _audit_put(self, entry: AuditEntry) -> int:
        with self._write() as conn:
            cur = conn.execute(_Q["audit_put"], {**audit_row(entry), "detail": dump(entry.detail)})
            return int(cur.lastrowid or 0)

    def _audit_read(self, before: int | None, limit: int, target: str | None) -> list[AuditEntry]:
        rows = self._read(_Q["audit_read"], {"before": before, "limit": limit, "target": target})
        return [audit_entry(row) for row in rows]

    def _lock(self, name: str, owner: str, now: float, until: float) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    _Q["lock"], {"name": name, "owner": owner, "now": now, "until": until}
                ).rowcount
                == 1
            )

    def _unlock(self, name: str, owner: str) -> bool:
        with self._write() as conn:
            return conn.execute(_Q["unlock"], {"name": name, "owner": owner}).rowcount == 1

    def _lock_holder(self, name: str) -> tuple[str, float] | None:
        rows = self._read(_Q["lock_holder"], {"name": name})
        return (rows[0][0], rows[0][1]) if rows else None

    def _incr(self, key: str, amount: int) -> int:
        with self._write() as conn:
            value: int = conn.execute(_Q["incr"], {"key": key, "amount": amount}).fetchone()[0]
        return value

    def _join(
        self, group_id: str, index: int, size: int, result: Any, keep_until: float
    ) -> list[Any] | None:
        with self._write() as conn:
            conn.execute(
                _Q["join"],
                {
                    "group_id": group_id,
                    "idx": index,
                    "result": orjson.dumps(result).decode(),
                    "keep_until": keep_until,
                },
            )
            rows = conn.execute(_Q["group_results"], {"group_id": group_id}).fetchall()
        return [orjson.loads(row[0]) for row in rows] if len(rows) >= size else None

    def _kv_set(self, key: str, value: Any, until: float | None) -> None:
        with self._write() as conn:
            conn.execute(_Q["kv_set"], {"key": key, "value": dump(value), "until": until})

    def _kv_get(self, key: str, now: float, default: Any) -> Any:
        rows = self._read(_Q["kv_get"], {"key": key, "now": now})
        return orjson.loads(rows[0][0]) if rows else default

    def _kv_delete(self, key: str) -> bool:
        with self._write() as conn:
            return conn.execute(_Q["kv_delete"], {"key": key}).rowcount == 1

    def _schedule_put(self, name: str, spec: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(_Q["schedule_put"], {"name": name, "spec": dump(spec)})

    def _schedule_state(self, name: str, state: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(_Q["schedule_state"], {"name": name, "state": dump(state)})

    def _schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        rows = self._read(_Q["schedules"])
        return {name: (orjson.loads(spec), orjson.loads(state)) for name, spec, state in rows}

    def _schedule_delete(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(_Q["schedule_delete"], {"name": name}).rowcount == 1

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Return as soon as another connection commits (a possible enqueue), or at timeout."""
        conn = self._conn()
        deadline = time.monotonic() + timeout
        start = conn.execute("PRAGMA data_version").fetchone()[0]
        while time.monotonic() < deadline:
            time.sleep(WAKE_POLL)
            if conn.execute("PRAGMA data_version").fetchone()[0] != start:
                return

    def watch_revocations(self) -> RevocationWatch:
        return PolledWatch(self)

    def _terminations(self) -> int:
        row = self._read(_Q["counter"], {"key": TERMINATIONS})
        return int(row[0][0]) if row else 0


class PolledWatch(RevocationWatch):
    """SQLite cannot push: read the count of terminations every ``REVOKE_POLL`` seconds
    (on the watching thread's own connection) and wake when it changed."""

    def __init__(self, backend: SQLiteBackend) -> None:
        self.backend = backend
        self.seen = backend._terminations()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            count = self.backend._terminations()
            if count != self.seen:
                self.seen = count
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(REVOKE_POLL, left))


def _claim_params(
    queues: list[str], worker: str, limit: int, now: float, lease_until: float, prefix: str
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "worker": worker,
        "now": now,
        "lease_until": lease_until,
        "limit": limit,
        "prefix": prefix,
    }
    params.update((f"q{i}", queue) for i, queue in enumerate(queues))
    return params


def _claim_on(conn: Any, params: dict[str, Any], queue_count: int) -> list[JobRecord]:
    conn.execute(_Q["promote"], {"now": params["now"]})
    return [record(row) for row in conn.execute(_claim_sql(queue_count), params).fetchall()]


def _finish_on(conn: Any, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]:
    rejected: list[str] = []
    ended: list[str] = []
    for out in outcomes:
        params = {
            "id": out.job_id,
            "token": out.token,
            "now": now,
            "error": dump(out.error),
            "brief": brief_json(out.error),
        }
        if out.state is State.RETRY:
            cur = conn.execute(_Q["snooze"], {**params, "run_at": out.run_at or now})
        else:
            result = dump(out.result) if out.state is State.SUCCESS else None
            cur = conn.execute(
                _Q["finish"],
                {**params, "state": out.state.value, "result": result, "keep_until": keep_until},
            )
            if cur.rowcount == 1:
                ended.append(out.job_id)
        if cur.rowcount != 1:
            rejected.append(out.job_id)
    if ended:  # one statement for the batch's rollups (not a RETURNING per job: 4 us each)
        conn.execute(
            _Q["rollup_finished"], {"ids": dump(ended), "now": now, "minute": minute_of(now)}
        )
    return rejected
