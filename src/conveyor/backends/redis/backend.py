"""``redis://`` and ``rediss://``: many machines sharing one Redis.

Every multi-step transition is one Lua script (``backends/redis/lua/*.lua``, with
``common.lua`` prepended, but for the single-job enqueue), run by EVALSHA and reloaded by redis-py when a restarted
Redis has forgotten it. All of an app's keys share one hash tag, ``conveyor:{prefix}``
(``?prefix=`` in the URL, default ``conveyor``), so each script touches a single slot and
runs unchanged on Redis Cluster, where one app's keys live on one node.

Idle workers block on ``BLPOP`` of their queues' wake lists (no polling); an enqueue or
a claim that leaves work behind pushes a wake token. Times come from the backend clock
passed in by the base class, never from the scripts, so the contract's injected clock
works here too. Connection failures become ``BackendError``, which workers log and
retry, so a Redis restart does not crash them.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from dataclasses import asdict
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
from ...states import State
from ..base import (
    AUDIT_KEPT,
    EVENTS_KEPT,
    TASK_SAMPLE,
    AsyncReads,
    ClaimArgs,
    RevocationWatch,
    not_redelivered_error,
    worker_died_error,
    worker_lost_error,
)
from ..common import aborted_step, brief_json, guarded, matches, rerun_entry, revoked_error
from ..rollup import Minute, minute_of, minutes
from .aio import RedisAsyncReads
from .codec import claimed, due_member, num, pairs, record, stored
from .connection import CUT, NoScriptError, RedisConnection, retried
from .driver import redis
from .watch import PubSubWatch

#: A list page examines at most this many jobs (less if ``JobQuery.scan`` says so): each
#: costs a round of HMGET here, about 10x a SQL row, so Redis keeps its pages shorter.
LIST_SCAN_LIMIT = 2_000
PURGE_BATCH = 1000
#: The longest a pipelined wake wait blocks (well under the socket timeout).
MAX_WAIT = 5.0


#: Runs read by recent_runs stay memoised this long after they finished (seconds).
RUNS_MEMO = 3600.0


class RedisBackend(RedisConnection):
    """Jobs in Redis; see the module docstring."""

    # A prune batch is one script, and Redis runs nothing else meanwhile: the worker's
    # claims and acknowledgements wait as long (docs/worker.md, "Pruning").
    prune_batch_seconds = 0.01
    prune_holds_store = True

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", **options: Any) -> None:
        super().__init__(url, **options)
        self._runs: dict[tuple[str, str], Run] = {}  # see _recent_runs
        self._ids_migrated = False  # see migrate

    # -- primitives ----------------------------------------------------------------------

    @guarded
    def _insert(self, jobs: Sequence[JobRecord]) -> list[bool]:
        if len(jobs) == 1 and not jobs[0].state.finished:
            return [self._insert_one(jobs[0])]
        args: list[Any] = []
        created, created_s = None, ""  # a batch's jobs share their created_at: written once
        for job in jobs:
            if job.created_at != created:
                created, created_s = job.created_at, num(job.created_at)
            run_s = created_s if job.run_at == created else num(job.run_at)
            optional: list[str] = []  # most jobs: none, and no call to find out
            if (job.headers or job.expires_at is not None or job.parent_id or job.root_id
                    or job.workflow_id or job.state.finished):  # fmt: skip
                optional = self._optional(job)
                if job.state.finished:  # keep_until last: the script reads it there
                    optional += ["error", orjson.dumps(job.error).decode(),
                                 "finished_at", num(job.finished_at or 0),
                                 "keep_until", num(job.keep_until or 0)]  # fmt: skip
            args += [job.id, job.task, job.queue, job.priority, job.payload, job.state.value,
                     run_s, created_s, job.max_retries, len(optional), *optional]  # fmt: skip
        now = min(j.created_at for j in jobs)
        # Python orders str by code point, which is UTF-8's byte order: Redis's order.
        bounds = min(j.id for j in jobs), max(j.id for j in jobs)
        return [bool(x) for x in self._run("enqueue", num(now), *bounds, *args)]

    @staticmethod
    def _optional(job: JobRecord) -> list[str]:
        """Name, value pairs of the optional fields a job has set (both enqueue scripts)."""
        optional: list[str] = []
        if job.headers:
            optional += ["headers", orjson.dumps(job.headers).decode()]
        if job.expires_at is not None:
            optional += ["expires_at", num(job.expires_at)]
        for name in ("parent_id", "root_id", "workflow_id"):
            if value := getattr(job, name):
                optional += [name, value]
        return optional

    def _insert_one(self, job: JobRecord) -> bool:
        """One waiting job (a single ``delay()``): flat arguments, a script without the
        common prelude, half the time inside Redis of the batch script."""
        optional = self._optional(job)
        created = num(job.created_at)
        due = due_member(job.priority, job.run_at, job.id) if job.run_at <= job.created_at else ""
        args = [due, job.id, job.task, job.queue, job.priority, job.payload, job.state.value,
                num(job.run_at), created, job.max_retries, event_micros(job.created_at)]  # fmt: skip
        return bool(self._run("enqueue_one", *args, *optional))

    @guarded
    def _get(self, job_ids: list[str]) -> dict[str, JobRecord]:
        if len(job_ids) == 1:  # one job (a status read): no pipeline to build
            found = stored(self.client.hgetall(self._key("job", job_ids[0])), job_ids[0])
            return {} if found is None else {job_ids[0]: found}
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self._key("job", job_id))
        return {
            job_id: record(fields, job_id)
            for job_id, fields in zip(job_ids, pipe.execute(), strict=True)
            if fields
        }

    def _tokens(self, limit: int) -> str:
        """The lease tokens a claim of up to ``limit`` jobs hands out (a JSON array)."""
        return orjson.dumps(
            [self.lease_prefix + secrets.token_hex(8) for _ in range(limit)]
        ).decode()

    @guarded
    def _claim(
        self, queues: list[str], worker: str, limit: int, now: float, lease_until: float
    ) -> list[JobRecord]:
        tokens = self._tokens(limit)
        rows = self._run("claim", num(now), num(lease_until), worker, limit, tokens, *queues)
        return [claimed(row) for row in rows]

    def wait_and_claim(
        self, queues: Sequence[str], worker: str, limit: int, lease_seconds: float, timeout: float
    ) -> list[JobRecord]:
        """BLPOP on the queues' wake lists with the claim script pipelined behind it on the
        same connection: Redis runs the claim the moment the wait ends, so a woken worker
        gets its jobs without a second round trip. The script reads the server's clock
        (the wait's length is unknown when it is sent), shifted to ours."""
        if limit <= 0 or not queues or timeout <= 0:
            return super().wait_and_claim(queues, worker, limit, lease_seconds, timeout)
        return self._settle_claimed(
            self._wait_claim(list(queues), worker, limit, lease_seconds, timeout)
        )

    @guarded
    def _wait_claim(
        self, queues: list[str], worker: str, limit: int, lease_seconds: float, timeout: float
    ) -> list[JobRecord]:
        offset = self._clock_offset()
        sha, _ = self._script("claim")
        tokens = self._tokens(limit)
        wake = [self._key("q", q, "wake") for q in queues]
        claim = (sha, 1, self._key("ids"), self.prefix, f"@{offset!r}", num(lease_seconds), worker,
                 limit, tokens, *queues)  # fmt: skip
        rows: Any = None
        for retry in (False, True):  # a dropped connection is retried once, as in _run
            conn = self._connection()
            try:
                conn.send_command("BLPOP", *wake, min(max(0.01, timeout), MAX_WAIT))
                conn.send_command("EVALSHA", *claim)
                conn.read_response()
                try:
                    rows = conn.read_response()
                except NoScriptError:  # Redis forgot the script; the wait is over
                    rows = None
                break
            except CUT as exc:
                conn.disconnect()
                if retry or not retried(exc):
                    raise
            except BaseException:
                conn.disconnect()  # a reply may be left unread: never reuse this connection
                raise
        if rows is None:
            now = self.now()
            rows = self._run(
                "claim", num(now), num(now + lease_seconds), worker, limit, tokens, *queues
            )
        return [claimed(row) for row in rows]

    @guarded
    def _renew(self, leases: list[Lease], now: float, lease_until: float) -> HeartbeatReply:
        flat = [x for lease in leases for x in (lease.job_id, lease.token)]
        terminate, lost = self._run("renew", num(lease_until), *flat)
        return HeartbeatReply(set(terminate), set(lost))

    @guarded
    def _finish(self, outcomes: list[Outcome], now: float, keep_until: float) -> list[str]:
        return list(self._run("finish", num(now), num(keep_until), _outcomes_json(outcomes, now)))

    @guarded
    def _finish_and_claim(
        self, outcomes: list[Outcome], now: float, keep_until: float, claim: ClaimArgs
    ) -> tuple[list[str], list[JobRecord]]:
        """One script (finish.lua, then claim.lua): one round trip for both."""
        queues, worker, limit, lease_until = claim
        tokens = self._tokens(limit)
        refused, rows = self._run("finish_claim", num(now), num(keep_until),
                                  _outcomes_json(outcomes, now), num(lease_until), worker, limit,
                                  tokens, *queues)  # fmt: skip
        return list(refused), [claimed(row) for row in rows]

    @guarded
    def _release(self, leases: list[Lease], now: float, interrupted: dict[str, Any] | None) -> None:
        brief = brief_json(interrupted) or ""
        pairs = [x for lease in leases for x in (lease.job_id, lease.token)]
        self._run("release", num(now), brief, *pairs)

    @guarded
    def _expire(self, leases: list[Lease]) -> None:
        self._run("expire", *[x for lease in leases for x in (lease.job_id, lease.token)])

    @guarded
    def _leases_of(self, prefix: str) -> list[Lease]:
        flat = self._run("leases_of", prefix)
        return [Lease(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    @guarded
    def _worker_leases(self, worker_id: str) -> list[Lease]:
        flat = self._run("worker_leases", worker_id)
        return [Lease(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    @guarded
    def _next_due(self, queues: list[str]) -> float | None:
        paused = self._paused()
        pipe = self.client.pipeline(transaction=False)
        live = [q for q in queues if q not in paused]
        for queue in live:
            # the due pages, the due tail (lua/tail.lua), an earlier version's ready set
            pipe.exists(*(self._key("q", queue, k) for k in ("due", "newdue", "ready")))
            pipe.zrange(self._key("q", queue, "delayed"), 0, 0, withscores=True)
        answers = pipe.execute()
        due: list[float] = []
        for ready, delayed in zip(answers[::2], answers[1::2], strict=True):
            if ready:
                return self.now()
            due += [score for _, score in delayed]
        return min(due, default=None)

    @guarded
    def _set_progress(self, job_id: str, token: str, progress: dict[str, Any], now: float) -> bool:
        return bool(self._run("progress", num(now), job_id, token, orjson.dumps(progress).decode()))

    @guarded
    def _cancel(
        self, job_id: str, terminate: bool, reason: str, now: float, keep_until: float
    ) -> tuple[JobRecord, State] | None:
        error = orjson.dumps(revoked_error(reason)).decode()
        reply = self._run(
            "cancel", num(now), num(keep_until), job_id, "1" if terminate else "0", error
        )
        if reply is None:
            return None
        was, flat = reply
        return record(pairs(flat), job_id), State(was)

    @guarded
    def _rescue(
        self, now: float, max_lost: int, keep_until: float, causes: dict[str, str]
    ) -> list[str]:
        errors = [revoked_error("revoked"), not_redelivered_error(), worker_lost_error(max_lost)]
        said = {
            job_id: [orjson.dumps(e).decode() for e in (worker_lost_error(max_lost, cause),
                                                         worker_died_error(cause))]
            for job_id, cause in causes.items()
        }  # fmt: skip
        return list(
            self._run(
                "rescue",
                num(now),
                max_lost,
                num(keep_until),
                *[orjson.dumps(e).decode() for e in errors],
                orjson.dumps(said).decode(),
            )
        )

    @guarded
    def _prune(self, now: float, limit: int, trim: bool) -> int:
        # No trim here: the audit stream is capped as it is written, group results and
        # rollups expire, and expired key-values go with every batch (prune.lua).
        return int(self._run("prune", num(now), limit))

    @guarded
    def _requeue(self, job_id: str, now: float) -> tuple[JobRecord | None, bool]:
        answer = self._run("requeue", num(now), job_id)
        if answer is None:
            return None, False
        return record(pairs(answer[1]), job_id), bool(answer[0])

    @guarded
    def _rerun(self, job: JobRecord, now: float) -> bool:
        """The requeue script and the new input in one MULTI, under a WATCH of the job's
        hash: nothing runs between them, and a change since it was read drops both."""
        key = self._key("job", job.id)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    found = stored(pipe.hgetall(key), job.id)
                    if found is None or not aborted_step(found):
                        pipe.unwatch()
                        return False
                    entry = rerun_entry(found, now)
                    pipe.multi()
                    # EVAL with the body: a script Redis forgot would fail inside the MULTI
                    pipe.execute_command("EVAL", self._script("requeue")[1], 1, self._key("ids"),
                                         self.prefix, num(now), job.id)  # fmt: skip
                    fields = {"p": job.payload.decode(), "headers": orjson.dumps(job.headers).decode(),
                              "attempts": orjson.dumps([*found.attempts, entry]).decode()}  # fmt: skip
                    if job.expires_at is not None:
                        fields["expires_at"] = num(job.expires_at)
                    pipe.hset(key, mapping=fields)
                    pipe.hdel(
                        key, "payload", *(() if job.expires_at is not None else ("expires_at",))
                    )
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # changed since read: read it again

    @guarded
    def _purge(self, queue: str, reason: str, now: float, keep_until: float) -> int:
        error = orjson.dumps(revoked_error(reason)).decode()
        total = 0
        while done := int(self._run("purge", num(now), num(keep_until), queue, error, PURGE_BATCH)):
            total += done
        return total

    @guarded
    def _list(self, query: JobQuery) -> tuple[list[JobRecord], str | None]:
        """Every job, newest (or oldest) first, filtered here: at most ``query.scan`` (and
        at most ``LIST_SCAN_LIMIT``) examined per page, then the page says where it stopped."""
        if query.states is not None and set(query.states) == {State.STARTED}:
            return self._list_running(query), None
        if not self._ids_migrated:
            self.migrate()
        bound = min(query.scan or LIST_SCAN_LIMIT, LIST_SCAN_LIMIT)
        upper = f"({query.before}" if query.before else "+"
        lower = f"({query.after}" if query.after else "-"
        found: list[JobRecord] = []
        scanned = 0
        chunk = query.limit  # read what the page needs, then more while filters reject
        while len(found) < query.limit:
            if scanned >= bound:
                return found, (lower if query.oldest_first else upper)[1:]
            num = min(chunk, bound - scanned)
            ids = self._run("ids_list", "0" if query.oldest_first else "1", lower, upper, num)
            chunk = min(chunk * 4, 1000)
            if not ids:
                break
            scanned += len(ids)
            wanted = self._matching(ids, query)
            records = self._get(wanted[: query.limit - len(found)]) if wanted else {}
            for i in ids:
                if query.oldest_first:
                    lower = f"({i}"
                else:
                    upper = f"({i}"
                if i in records:
                    found.append(records[i])
                    if len(found) == query.limit:
                        break
        return found, None

    def _matching(self, ids: list[str], query: JobQuery) -> list[str]:
        """The ids, in order, whose jobs pass ``query``: read from the fields the filters
        name (a fifth of a record, and nothing to decode), not the whole records."""
        names = ["state", "queue", "task", "worker", "c", "created_at"]  # codec.SHORT
        if query.text is not None:
            names += ["p", "payload"]
        found = list(zip(ids, self._fields(ids, names), strict=True))
        gone = [job_id for job_id, f in found if f[0] is None]
        if gone:  # pruned by a version that did not know the id index (docs/redis.md)
            self._run("ids_forget", *gone)
        return [
            job_id
            for job_id, f in found
            if f[0] is not None and matches(_filtered(job_id, f), query)
        ]

    @guarded
    def migrate(self) -> list[int]:
        """Bring a store an earlier version wrote to this layout, 1,000 jobs per script
        call: job ids indexed in one sorted set (``all``) into the paged id index (layout
        2; listing does it by itself once per process), then each queue's ready sorted set
        into its due pages (layout 3; each claim moves what it needs by itself). Returns
        the layouts reached, [] when there was nothing to move."""
        applied = []
        if self.client.exists(self._key("all")):
            while int(self._run("ids_migrate", 1000)):
                pass
            applied.append(2)
        self._ids_migrated = True
        for queue in sorted(self.client.smembers(self._key("queues"))):
            if self.client.exists(self._key("q", queue, "ready")):
                while int(self._run("ready_migrate", queue, 1000)):
                    pass
                if 3 not in applied:
                    applied.append(3)
        return applied

    def _fields(self, ids: list[str], names: list[str]) -> list[list[Any]]:
        """Per job, the named fields (None for one it lacks): by script in slices of
        1,000 jobs, so a long list does not hold Redis for long."""
        n = len(names)
        flat = [
            x
            for i in range(0, len(ids), 1000)
            for x in self._run("job_fields", n, *names, *ids[i : i + 1000])
        ]
        return [flat[i : i + n] for i in range(0, len(flat), n)]

    def _list_running(self, query: JobQuery) -> list[JobRecord]:
        """STARTED jobs, read from the lease set (as many as the workers' slots)."""
        ids = sorted(self.client.zrange(self._key("leases"), 0, -1), reverse=not query.oldest_first)
        ids = [i for i in ids if (query.before is None or i < query.before)
               and (query.after is None or i > query.after)]  # fmt: skip
        found: list[JobRecord] = []
        for start in range(0, len(ids), 500):
            records = self._get(ids[start : start + 500])
            found += [r for r in records.values() if matches(r, query)]
            if len(found) >= query.limit:
                break
        return sorted(found, key=lambda r: r.id, reverse=not query.oldest_first)[: query.limit]

    @guarded
    def _counts(self) -> dict[tuple[str, State], int]:
        counts = {}
        for key, value in self.client.hgetall(self._key("counts")).items():
            queue, state = key.split("\0")
            if int(value) > 0:
                counts[(queue, State(state))] = int(value)
        return counts

    @guarded
    def _recent_runs(self, since: float, limit: int) -> list[Run]:
        # A finished run never changes while it stays in `done` under the same score (a
        # retry removes it; finishing again scores it anew), so the runs already read
        # are kept by (id, finished_at) and only new ones are read: the overview reads
        # the last hour's runs several times a page, and one HMGET per run cost ~10 ms
        # per 3,000 runs. The memo holds the last RUNS_MEMO seconds' runs read, and
        # what the latest call returned.
        flat = self._run("recent_done", num(since), limit)
        pairs = list(zip(flat[::2], flat[1::2], strict=True))
        known = self._runs
        new = [job_id for job_id, score in pairs if (job_id, score) not in known]
        fields = self._fields(new, ["queue", "task", "state", "started_at", "finished_at"])
        fresh = dict(zip(new, fields, strict=True))
        runs, kept = [], {}
        for job_id, score in pairs:
            run = known.get((job_id, score))
            if run is None:
                q, t, s, a, b = fresh[job_id]
                if not (q and a and b):
                    continue
                run = Run(q, t, s, float(a), float(b))
            kept[(job_id, score)] = run
            runs.append(run)
        horizon = self.now() - RUNS_MEMO
        self._runs = {k: v for k, v in known.items() if v.finished_at >= horizon} | kept
        return runs

    @guarded
    def _oldest_waiting(self, now: float) -> dict[str, float]:
        queues = sorted(self.client.smembers(self._key("queues")))
        if not queues:
            return {}
        due = self._run("oldest_due", *queues)  # the due pages (lua/oldest_due.lua)
        band = 4398046511104  # an earlier version's ready score: (9 - priority) * band + ms
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            for rank in range(10):  # the oldest job of each priority comes first in its band
                pipe.zrangebyscore(
                    self._key("q", queue, "ready"),
                    rank * band,
                    (rank + 1) * band - 1,
                    start=0,
                    num=1,
                    withscores=True,
                )
            pipe.zrange(self._key("q", queue, "delayed"), 0, 0, withscores=True)
        answers = pipe.execute()
        oldest: dict[str, float] = {}
        for i, queue in enumerate(queues):
            found = [int(due[i]) / 1000] if due[i] else []
            found += [
                (score % band) / 1000 for top in answers[i * 11 : i * 11 + 10] for _, score in top
            ]
            found += [score for _, score in answers[i * 11 + 10] if score <= now]
            if found:
                oldest[queue] = min(found)
        return oldest

    @guarded
    def _run_rollup(self, since: int) -> dict[tuple[str, int], Minute]:
        """One HGETALL per minute's hash (rollup.lua), in one pipeline."""
        starts = range(since, minute_of(self.now()) + 1, 60)
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self._key("minute", str(start)))
        rows = []
        for start, fields in zip(starts, pipe.execute(), strict=True):
            for field, n in fields.items():
                queue, bucket, *failed = field.split("\0")
                if not failed:
                    rows.append(
                        (queue, start, int(bucket), int(n), int(fields.get(field + "\0f", 0)))
                    )
        return minutes(rows)

    @guarded
    def _waiting_tasks(self) -> dict[str, set[str]]:
        found = self._run("waiting_tasks", TASK_SAMPLE)
        return {found[i]: set(found[i + 1]) for i in range(0, len(found), 2)}

    @guarded
    def _expired_waiting(self, queue: str, now: float, sample: int) -> tuple[int, int]:
        expired, read = self._run("expired_waiting", queue, sample, num(now))
        return int(expired), int(read)

    @guarded
    def _set_paused(self, queue: str, paused: bool) -> None:
        (self.client.sadd if paused else self.client.srem)(self._key("paused"), queue)
        if not paused:
            self.client.lpush(self._key("q", queue, "wake"), "1")

    @guarded
    def _paused(self) -> set[str]:
        return set(self.client.smembers(self._key("paused")))

    @guarded
    def _worker_put(self, info: WorkerInfo) -> None:
        self._run("worker_put", info.id, orjson.dumps(worker_entry(info)).decode())

    @guarded
    def _worker_stop(self, worker_id: str, now: float) -> None:
        self._run("worker_stop", worker_id, num(now))

    @guarded
    def _worker_delete(self, worker_id: str) -> None:
        self.client.hdel(self._key("workers"), worker_id)
        self.client.hdel(self._key("workers", "stopped"), worker_id)

    @guarded
    def _stale_workers(self, before: float) -> list[WorkerInfo]:
        raws = [*self.client.hvals(self._key("workers")),
                *self.client.hvals(self._key("workers", "stopped"))]  # fmt: skip
        return [w for w in map(_worker, raws) if w.last_seen < before]

    @guarded
    def _live_workers(self, since: float) -> list[WorkerInfo]:
        """From ``workers`` alone: a stop moves the entry to ``workers:stopped``."""
        found = map(_worker, self.client.hvals(self._key("workers")))
        return [w for w in found if w.last_seen >= since and w.stopped_at is None]

    @guarded
    def _worker_entries(self, ids: list[str]) -> list[WorkerInfo]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self._key("workers"), ids)
        pipe.hmget(self._key("workers", "stopped"), ids)
        running, stopped = pipe.execute()
        return [_worker(a or b) for a, b in zip(running, stopped, strict=True) if a or b]

    @guarded
    def _events(self, after: int, limit: int) -> list[Event]:
        start = "-" if after <= 0 else f"({after // 1_000_000}-{after % 1_000_000}"
        events = []
        for stream_id, f in self.client.xrange(self._key("events"), start, "+", count=limit):
            events.append(
                Event(
                    _stream_seq(stream_id),
                    _event_time(f["t"]),
                    f["k"] or "job.state",  # written "" (memory: lua/common.lua)
                    f["j"],
                    f["q"],
                    f["n"],
                    f["s"],
                )
            )
        return events

    @guarded
    def _put_event(self, now: float, kind: str, queue: str, subject: str) -> None:
        fields = {"t": num(now), "k": kind, "j": subject, "q": queue, "n": "", "s": ""}
        self.client.xadd(self._key("events"), fields, maxlen=EVENTS_KEPT, approximate=True)

    @guarded
    def _audit_put(self, entry: AuditEntry) -> int:
        """A stream entry, its id the seq (ms * 1,000,000 + n, as the events'); entries
        about one target are found by reading the stream (it is capped at AUDIT_KEPT)."""
        data = orjson.dumps({**asdict(entry), "seq": 0}).decode()
        stream_id = self.client.xadd(
            self._key("audit"), {"e": data}, maxlen=AUDIT_KEPT, approximate=True
        )
        return _stream_seq(stream_id)

    @guarded
    def _audit_read(self, before: int | None, limit: int, target: str | None) -> list[AuditEntry]:
        found: list[AuditEntry] = []
        end = "+" if before is None else f"({before // 1_000_000}-{before % 1_000_000}"
        while len(found) < limit:
            page = self.client.xrevrange(self._key("audit"), end, "-", count=max(limit, 500))
            for stream_id, fields in page:
                entry = AuditEntry(**{**orjson.loads(fields["e"]), "seq": _stream_seq(stream_id)})
                if target is None or entry.target == target:
                    found.append(entry)
            if len(page) < max(limit, 500):
                break
            end = f"({page[-1][0]}"
        return found[:limit]

    @guarded
    def _lock(self, name: str, owner: str, now: float, until: float) -> bool:
        gc_ms = int(max(1.0, until - now) * 2000)
        return bool(self._run("lock", name, owner, num(now), num(until), gc_ms))

    @guarded
    def _unlock(self, name: str, owner: str) -> bool:
        return bool(self._run("unlock", name, owner))

    @guarded
    def _lock_holder(self, name: str) -> tuple[str, float] | None:
        owner, until = self.client.hmget(self._key("lock", name), "owner", "until")
        return None if owner is None or until is None else (owner, float(until))

    @guarded
    def _incr(self, key: str, amount: int) -> int:
        return int(self.client.hincrby(self._key("counters"), key, amount))

    @guarded
    def _join(
        self, group_id: str, index: int, size: int, result: Any, keep_until: float
    ) -> list[Any] | None:
        found = self._run(
            "join", group_id, index, size, orjson.dumps(result).decode(), int(keep_until * 1000)
        )
        return None if found is None else [orjson.loads(r) for r in found]

    @guarded
    def _kv_set(self, key: str, value: Any, until: float | None) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._key("kv"), key, orjson.dumps([value, until]).decode())
        if until is not None:
            pipe.zadd(self._key("kvx"), {key: until})
        else:  # an expiry set before must not prune the value kept for good now
            pipe.zrem(self._key("kvx"), key)
        pipe.execute()

    @guarded
    def _kv_get(self, key: str, now: float, default: Any) -> Any:
        raw = self.client.hget(self._key("kv"), key)
        if raw is None:
            return default
        value, until = orjson.loads(raw)
        if until is not None and until <= now:
            # Expired: left to the prune script. A delete here, a step after the read,
            # took a value set again in between.
            return default
        return value

    @guarded
    def _kv_delete(self, key: str) -> bool:
        return bool(self.client.hdel(self._key("kv"), key))

    @guarded
    def _schedule_put(self, name: str, spec: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._key("schedules"), name, orjson.dumps(spec).decode())
        pipe.hsetnx(self._key("schedule_states"), name, "{}")
        pipe.execute()

    @guarded
    def _schedule_state(self, name: str, state: dict[str, Any]) -> None:
        self._run("schedule_state", name, orjson.dumps(state).decode())

    @guarded
    def _schedules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        specs = self.client.hgetall(self._key("schedules"))
        states = self.client.hgetall(self._key("schedule_states"))
        return {n: (orjson.loads(s), orjson.loads(states.get(n, "{}"))) for n, s in specs.items()}

    @guarded
    def _schedule_delete(self, name: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self._key("schedules"), name)
        pipe.hdel(self._key("schedule_states"), name)
        return bool(pipe.execute()[0])

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Block on the queues' wake lists (BLPOP): no polling, and no CPU while idle."""
        if timeout <= 0:
            return
        with contextlib.suppress(*CUT):
            self.client.blpop(
                [self._key("q", q, "wake") for q in queues], timeout=max(0.01, timeout)
            )

    def async_reads(self) -> AsyncReads:
        return RedisAsyncReads(self)

    def watch_revocations(self) -> RevocationWatch:
        return PubSubWatch(self)


def _filtered(job_id: str, f: list[str]) -> JobRecord:
    """A job as far as ``matches`` reads it: state, queue, task, worker, created_at and,
    for a text filter, the payload (each under its short name, or the long one a record
    of an earlier version has)."""
    payload = (f[6] or f[7]).encode() if len(f) > 6 else b""
    created = float(f[4] or f[5])
    return JobRecord(job_id, f[2], f[1], 0, payload, State(f[0]), 0.0, created, worker=f[3])


#: An event time above this is in microseconds, not seconds (seconds reach it in 33658).
EVENT_MICROS = 1e12


def event_micros(seconds: float) -> str:
    """An event's time as the enqueue scripts write it: whole microseconds (a stream entry
    stores such an integer in 10 bytes, the seconds' 17-18 characters in 19-20)."""
    return str(round(seconds * 1_000_000))


def _event_time(raw: str) -> float:
    """An event's time: whole microseconds (what the enqueue scripts write), or seconds as
    text (what the other scripts, and earlier versions, write), read alike."""
    t = float(raw)
    return t / 1e6 if t > EVENT_MICROS else t


def _stream_seq(stream_id: str) -> int:
    """A stream entry's id ("ms-n") as one growing number."""
    ms, n = stream_id.split("-")
    return int(ms) * 1_000_000 + int(n)


def _outcomes_json(outcomes: list[Outcome], now: float) -> str:
    """The outcomes as finish.lua reads them (a JSON array of flat objects)."""
    data = []
    for out in outcomes:
        item: dict[str, Any] = {"id": out.job_id, "token": out.token, "state": out.state.value}
        if out.error is not None:
            item["error"] = orjson.dumps(out.error).decode()
            item["brief"] = brief_json(out.error)
        if out.state is State.SUCCESS:
            item["result"] = orjson.dumps(out.result).decode()
        if out.state is State.RETRY:
            item["run_at"] = num(out.run_at or now)
        data.append(item)
    return orjson.dumps(data).decode()


def _worker(raw: str) -> WorkerInfo:
    return read_worker(orjson.loads(raw))
