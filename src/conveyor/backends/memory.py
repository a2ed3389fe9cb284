"""``memory://``: a complete backend inside one process, for tests and experiments.

Per queue, a ready heap ordered by (priority desc, run_at, arrival) and a delayed heap
ordered by run_at; entries are checked against the job's current state when popped, so
a cancelled or re-queued job leaves only a stale entry behind.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import itertools
import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

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
from ..states import FINISHED, WAITING, State
from .base import AUDIT_KEPT, EVENTS_KEPT, Backend, RevocationWatch
from .common import (
    aborted_step,
    attempt_entry,
    lost_delivery_end,
    lost_entry,
    matches,
    requeued_entry,
    rerun_entry,
    revoked_error,
)
from .rollup import ROLLUP_KEPT, Minute, Tally, minutes, tally

_Entry = tuple[int, float, int, str]


class MemoryBackend(Backend):
    shared = False

    def __init__(self, url: str = "memory://", **options: Any) -> None:
        super().__init__(url, **options)
        self._mutex = threading.Condition()
        self._jobs: dict[str, JobRecord] = {}
        self._entry_seq: dict[str, int] = {}
        self._ready: dict[str, list[_Entry]] = defaultdict(list)
        self._delayed: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
        self._arrivals = itertools.count()
        self._events_log: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self._event_seq = itertools.count(1)
        self._audit_log: deque[AuditEntry] = deque(maxlen=AUDIT_KEPT)
        self._audit_seq = itertools.count(1)
        self._paused_set: set[str] = set()
        self._worker_map: dict[str, WorkerInfo] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, int] = defaultdict(int)
        self._kv: dict[str, tuple[Any, float | None]] = {}
        self._groups: dict[str, dict[int, Any]] = {}
        self._schedule_map: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._terminations = 0  # revokes with terminate of running jobs, for the watches
        self._terminated = threading.Condition()
        self._rollup: Tally = {}  # (queue, minute, bucket) -> [finished, failed]

    # -- helpers (caller holds the mutex) ------------------------------------------------

    def _emit(self, job: JobRecord, now: float, kind: str = "job.state") -> None:
        self._events_log.append(
            Event(next(self._event_seq), now, kind, job.id, job.queue, job.task, job.state.value)
        )

    def _push(self, job: JobRecord, now: float) -> None:
        seq = next(self._arrivals)
        self._entry_seq[job.id] = seq
        if job.run_at > now:
            heapq.heappush(self._delayed[job.queue], (job.run_at, seq, job.id))
        else:
            heapq.heappush(self._ready[job.queue], (-job.priority, job.run_at, seq, job.id))
        self._mutex.notify_all()

    def _promote(self, queue: str, now: float) -> None:
        delayed = self._delayed.get(queue)
        while delayed and delayed[0][0] <= now:
            run_at, seq, job_id = heapq.heappop(delayed)
            job = self._jobs.get(job_id)
            if job and job.state in WAITING and self._entry_seq.get(job_id) == seq:
                job.state = State.PENDING  # due: queued like any other, as in every backend
                self._emit(job, now)
                heapq.heappush(self._ready[queue], (-job.priority, run_at, seq, job_id))

    def _pop_best(self, queues: list[str]) -> JobRecord | None:
        while True:
            best: str | None = None
            for queue in queues:
                heap = self._ready.get(queue)
                if heap and (best is None or heap[0] < self._ready[best][0]):
                    best = queue
            if best is None:
                return None
            _, _, seq, job_id = heapq.heappop(self._ready[best])
            job = self._jobs.get(job_id)
            if job and job.state in WAITING and self._entry_seq.get(job_id) == seq:
                return job

    def _leased(self, lease: Lease) -> JobRecord | None:
        job = self._jobs.get(lease.job_id)
        if job and job.state is State.STARTED and job.lease_token == lease.token:
            return job
        return None

    def _end(
        self, job: JobRecord, state: State, now: float, keep_until: float, **changes: Any
    ) -> None:
        job.attempts.append(attempt_entry(job, now, state, changes.get("error")))
        for key, (finished, failed) in tally(
            [(job.queue, state.value, job.started_at)], now
        ).items():
            cell = self._rollup.setdefault(key, [0, 0])
            cell[0] += finished
            cell[1] += failed
        self._set_finished(job, state, now, keep_until, **changes)

    def _set_finished(
        self, job: JobRecord, state: State, now: float, keep_until: float, **changes: Any
    ) -> None:
        for name, value in changes.items():
            setattr(job, name, value)
        job.state, job.finished_at, job.keep_until = state, now, keep_until
        job.lease_token = job.lease_until = None
        self._entry_seq.pop(job.id, None)
        self._emit(job, now)

    def _revoke_waiting(self, job: JobRecord, reason: str, now: float, keep_until: float) -> None:
        self._set_finished(
            job, State.REVOKED, now, keep_until, error=revoked_error(reason), revoke="revoke"
        )

    # -- primitives ----------------------------------------------------------------------

    def _insert(self, jobs: Sequence[JobRecord]) -> list[bool]:
        inserted = []
        with self._mutex:
            for job in jobs:
                if job.id in self._jobs:
                    inserted.append(False)
                    continue
                stored = copy.deepcopy(job)
                self._jobs[job.id] = stored
                if not stored.state.finished:
                    self._push(stored, job.created_at)
                self._emit(stored, job.created_at)
                inserted.append(True)
        return inserted

    def _get(self, job_ids: list[str]) -> dict[str, JobRecord]:
        with self._mutex:
            return {i: copy.deepcopy(self._jobs[i]) for i in job_ids if i in self._jobs}

    def _claim(
        self, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> list[JobRecord]:
        claimed: list[JobRecord] = []
        with self._mutex:
            active = [q for q in queues if q not in self._paused_set]
            for queue in active:
                self._promote(queue, now)
            while len(claimed) < limit and (job := self._pop_best(active)) is not None:
                self._entry_seq.pop(job.id, None)
                job.state, job.worker, job.started_at = State.STARTED, worker, now
                job.lease_token = self.lease_prefix + secrets.token_hex(8)
                job.lease_until = lease_until
                job.attempt += 1
                self._emit(job, now)
                claimed.append(copy.deepcopy(job))
        return claimed

    def _renew(self, leases: list[Lease], now: float, lease_until: float) -> HeartbeatReply:
        reply = HeartbeatReply()
        with self._mutex:
            for lease in leases:
                job = self._leased(lease)
                if job is None:
                    reply.lost.add(lease.job_id)
                    continue
                job.lease_until = lease_until
                if job.revoke == "terminate":
                    reply.terminate.add(job.id)
        return reply

    def _finish(self, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]:
        rejected = []
        with self._mutex:
            for out in outcomes:
                job = self._leased(Lease(out.job_id, out.token))
                if job is None:
                    rejected.append(out.job_id)
                elif out.state is State.RETRY:
                    job.attempts.append(attempt_entry(job, now, State.RETRY, out.error))
                    job.state, job.error, job.run_at = State.RETRY, out.error, out.run_at or now
                    job.lease_token = job.lease_until = None
                    self._push(job, now)
                    self._emit(job, now)
                else:
                    self._end(job, out.state, now, keep_until, result=out.result, error=out.error)
        return rejected

    def _release(self, leases: list[Lease], now: float, interrupted: dict[str, Any] | None) -> None:
        with self._mutex:
            for lease in leases:
                job = self._leased(lease)
                if job is None:
                    continue
                if interrupted is None:
                    job.attempt -= 1
                else:
                    job.attempts.append(attempt_entry(job, now, State.PENDING, interrupted))
                job.state = State.PENDING
                job.worker = job.started_at = job.lease_token = job.lease_until = None
                self._push(job, now)
                self._emit(job, now)

    def _expire(self, leases: list[Lease]) -> None:
        with self._mutex:
            for lease in leases:
                job = self._leased(lease)
                if job is not None:
                    job.lease_until = 0.0

    def _leases_of(self, prefix: str) -> list[Lease]:
        with self._mutex:
            return [
                Lease(j.id, j.lease_token) for j in self._jobs.values()
                if j.state is State.STARTED and j.lease_token and j.lease_token.startswith(prefix)
            ]  # fmt: skip

    def _worker_leases(self, worker_id: str) -> list[Lease]:
        with self._mutex:
            return [
                Lease(j.id, j.lease_token) for j in self._jobs.values()
                if j.state is State.STARTED and j.lease_token and j.worker == worker_id
            ]  # fmt: skip

    def _next_due(self, queues: list[str]) -> float | None:
        with self._mutex:
            due = [
                j.run_at for j in self._jobs.values()
                if j.state in WAITING and j.queue in queues and j.queue not in self._paused_set
            ]  # fmt: skip
        return min(due, default=None)

    def _set_progress(self, job_id: str, token: str, progress: dict[str, Any], now: float) -> bool:
        with self._mutex:
            job = self._leased(Lease(job_id, token))
            if job is None:
                return False
            job.progress = progress
            self._emit(job, now, "job.progress")
            return True

    def _cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None:
        with self._mutex:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            was = job.state
            if was in WAITING:
                self._revoke_waiting(job, reason, now, keep_until)
            elif job.state is State.STARTED:
                job.revoke = "terminate" if terminate else (job.revoke or "revoke")
                if terminate:
                    with self._terminated:
                        self._terminations += 1
                        self._terminated.notify_all()
            elif job.state is not State.REVOKED and job.revoke is None:
                job.revoke = "late"
            return copy.deepcopy(job), was

    def _rescue(
        self, now: float, max_lost: int, keep_until: float, causes: dict[str, str]
    ) -> list[str]:
        touched = []
        with self._mutex:
            for job in self._jobs.values():
                if job.state is not State.STARTED or (job.lease_until or 0) >= now:
                    continue
                touched.append(job.id)
                job.lost_leases += 1
                acks_early = job.headers.get("acks_late") is False
                cause = causes.get(job.id)
                ending = lost_delivery_end(
                    job.revoke is not None, acks_early, job.lost_leases, max_lost, cause
                )
                if ending is not None:
                    self._end(job, ending[0], now, keep_until, error=ending[1])
                else:
                    job.attempts.append(attempt_entry(job, now, State.PENDING, lost_entry(cause)))
                    job.state, job.worker, job.lease_token, job.lease_until = (
                        State.PENDING,
                        None,
                        None,
                        None,
                    )
                    self._push(job, now)
                    self._emit(job, now)
        return touched

    def _prune(self, now: float, limit: int, trim: bool) -> int:
        with self._mutex:
            doomed = [
                j.id
                for j in self._jobs.values()
                if j.state in FINISHED and j.keep_until is not None and j.keep_until <= now
            ][:limit]
            for job_id in doomed:
                del self._jobs[job_id]
            if trim:
                horizon = now - ROLLUP_KEPT
                for key in [k for k in self._rollup if k[1] < horizon]:
                    del self._rollup[key]
            return len(doomed)

    def _list(self, query: JobQuery) -> tuple[list[JobRecord], str | None]:
        with self._mutex:  # in memory: every job is examined, so a page never stops early
            jobs = sorted(self._jobs.values(), key=lambda j: j.id, reverse=not query.oldest_first)
            picked = [j for j in jobs if matches(j, query)][: query.limit]
            return [copy.deepcopy(j) for j in picked], None

    def _requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]:
        with self._mutex:
            job = self._jobs.get(job_id)
            if job is None:
                return None, False
            changed = job.state in (State.FAILURE, State.REVOKED)
            if changed:
                job.attempts.append(requeued_entry(job, now))
                job.state, job.run_at, job.lost_leases = State.PENDING, now, 0
                job.worker = job.started_at = job.finished_at = job.keep_until = None
                job.revoke = job.error = job.result = job.progress = None
                self._push(job, now)
                self._emit(job, now)
            return copy.deepcopy(job), changed

    def _rerun(self, job: JobRecord, now: float) -> bool:
        with self._mutex:  # reentrant: the requeue within holds it too
            stored = self._jobs.get(job.id)
            if stored is None or not aborted_step(stored):
                return False
            entry = rerun_entry(stored, now)
            self._requeue(job.id, now)
            stored.attempts[-1] = entry
            stored.payload, stored.headers = job.payload, copy.deepcopy(job.headers)
            stored.expires_at = job.expires_at
            return True

    def _purge(self, queue: str, reason: str, now: float, keep_until: float) -> int:
        with self._mutex:
            doomed = [j for j in self._jobs.values() if j.queue == queue and j.state in WAITING]
            for job in doomed:
                self._revoke_waiting(job, reason, now, keep_until)
            return len(doomed)

    def _recent_runs(self, since: float, limit: int) -> list[Run]:
        with self._mutex:
            runs = [
                Run(j.queue, j.task, j.state.value, j.started_at, j.finished_at)
                for j in self._jobs.values()
                if j.finished_at is not None and j.started_at is not None and j.finished_at >= since
            ]
        return sorted(runs, key=lambda r: r.finished_at, reverse=True)[:limit]

    def _run_rollup(self, since: int) -> dict[tuple[str, int], Minute]:
        with self._mutex:
            rows = [(q, m, b, n, f) for (q, m, b), (n, f) in self._rollup.items() if m >= since]
        return minutes(rows)

    def _waiting_tasks(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        with self._mutex:
            for job in self._jobs.values():
                if job.state in WAITING:
                    found[job.queue].add(job.task)
        return dict(found)

    def _expired_waiting(self, queue: str, now: float, sample: int) -> tuple[int, int]:
        with self._mutex:
            waiting = [
                j for j in self._jobs.values() if j.queue == queue and j.state is State.PENDING
            ]
        first = heapq.nsmallest(sample, waiting, key=lambda j: (-j.priority, j.run_at, j.id))
        return sum(1 for j in first if j.expires_at is not None and j.expires_at <= now), len(first)

    def _oldest_waiting(self, now: float) -> dict[str, float]:
        oldest: dict[str, float] = {}
        with self._mutex:
            for job in self._jobs.values():
                if job.state in WAITING and job.run_at <= now:
                    oldest[job.queue] = min(oldest.get(job.queue, job.run_at), job.run_at)
        return oldest

    def _counts(self) -> dict[tuple[str, State], int]:
        counts: dict[tuple[str, State], int] = defaultdict(int)
        with self._mutex:
            for job in self._jobs.values():
                counts[(job.queue, job.state)] += 1
        return dict(counts)

    def _set_paused(self, queue: str, paused: bool) -> None:
        with self._mutex:
            (self._paused_set.add if paused else self._paused_set.discard)(queue)
            self._mutex.notify_all()

    def _paused(self) -> set[str]:
        with self._mutex:
            return set(self._paused_set)

    def _worker_put(self, info: WorkerInfo) -> None:
        with self._mutex:
            stored = self._worker_map.get(info.id)
            if stored is None or stored.stopped_at is None:
                self._worker_map[info.id] = copy.deepcopy(info)

    def _worker_stop(self, worker_id: str, now: float) -> None:
        with self._mutex:
            stored = self._worker_map.get(worker_id)
            if stored is not None and stored.stopped_at is None:
                stored.stopped_at = now

    def _worker_delete(self, worker_id: str) -> None:
        with self._mutex:
            self._worker_map.pop(worker_id, None)

    def _stale_workers(self, before: float) -> list[WorkerInfo]:
        with self._mutex:
            return [copy.deepcopy(w) for w in self._worker_map.values() if w.last_seen < before]

    def _live_workers(self, since: float) -> list[WorkerInfo]:
        with self._mutex:
            return [
                copy.deepcopy(w)
                for w in self._worker_map.values()
                if w.last_seen >= since and w.stopped_at is None
            ]

    def _worker_entries(self, ids: list[str]) -> list[WorkerInfo]:
        with self._mutex:
            return [copy.deepcopy(self._worker_map[i]) for i in ids if i in self._worker_map]

    def _events(self, after: int, limit: int) -> list[Event]:
        with self._mutex:
            return [e for e in self._events_log if e.seq > after][:limit]

    def _put_event(self, now: float, kind: str, queue: str, subject: str) -> None:
        with self._mutex:
            self._events_log.append(Event(next(self._event_seq), now, kind, subject, queue, "", ""))

    def _audit_put(self, entry: AuditEntry) -> int:
        with self._mutex:
            seq = next(self._audit_seq)
            self._audit_log.append(
                dataclasses.replace(entry, seq=seq, detail=copy.deepcopy(entry.detail))
            )
            return seq

    def _audit_read(self, before: int | None, limit: int, target: str | None) -> list[AuditEntry]:
        with self._mutex:
            found = [e for e in reversed(self._audit_log)
                     if (before is None or e.seq < before) and (target is None or e.target == target)]  # fmt: skip
            return found[:limit]

    def _lock(self, name: str, owner: str, now: float, until: float) -> bool:
        with self._mutex:
            holder = self._locks.get(name)
            if holder and holder[0] != owner and holder[1] > now:
                return False
            self._locks[name] = (owner, until)
            return True

    def _unlock(self, name: str, owner: str) -> bool:
        with self._mutex:
            if self._locks.get(name, ("", 0.0))[0] != owner:
                return False
            del self._locks[name]
            return True

    def _lock_holder(self, name: str) -> tuple[str, float] | None:
        with self._mutex:
            return self._locks.get(name)

    def _incr(self, key: str, amount: int) -> int:
        with self._mutex:
            self._counters[key] += amount
            return self._counters[key]

    def _join(
        self, group_id: str, index: int, size: int, result: Any, keep_until: float
    ) -> list[Any] | None:
        with self._mutex:
            members = self._groups.setdefault(group_id, {})
            members.setdefault(index, copy.deepcopy(result))
            return (
                [copy.deepcopy(members[i]) for i in range(size)] if len(members) >= size else None
            )

    def _kv_set(self, key: str, value: Any, until: float | None) -> None:
        with self._mutex:
            self._kv[key] = (copy.deepcopy(value), until)

    def _kv_get(self, key: str, now: float, default: Any) -> Any:
        with self._mutex:
            value, until = self._kv.get(key, (default, None))
            if until is not None and until <= now:
                del self._kv[key]
                return default
            return copy.deepcopy(value)

    def _kv_delete(self, key: str) -> bool:
        with self._mutex:
            return self._kv.pop(key, None) is not None

    def _schedule_put(self, name: str, spec: dict[str, Any]) -> None:
        with self._mutex:
            _, state = self._schedule_map.get(name, ({}, {}))
            self._schedule_map[name] = (copy.deepcopy(spec), state)

    def _schedule_state(self, name: str, state: dict[str, Any]) -> None:
        with self._mutex:
            if name in self._schedule_map:
                self._schedule_map[name] = (self._schedule_map[name][0], copy.deepcopy(state))

    def _schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        with self._mutex:
            return copy.deepcopy(self._schedule_map)

    def _schedule_delete(self, name: str) -> bool:
        with self._mutex:
            return self._schedule_map.pop(name, None) is not None

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        with self._mutex:
            self._mutex.wait(timeout)

    def watch_revocations(self) -> RevocationWatch:
        return _Watch(self)


class _Watch(RevocationWatch):
    """Waits on the backend's condition for its count of terminations to change."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.seen = backend._terminations

    def wait(self, timeout: float) -> bool:
        backend = self.backend
        with backend._terminated:
            backend._terminated.wait_for(lambda: backend._terminations != self.seen, timeout)
            changed, self.seen = backend._terminations != self.seen, backend._terminations
        return changed
