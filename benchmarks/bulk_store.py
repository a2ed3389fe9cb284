"""Build a large store fast: rows written straight into a backend's tables or keys in
bulk (SQLite ``executemany`` in one transaction, PostgreSQL ``COPY``, Redis pipelines),
laid out exactly as the backend's own writes leave them, counters included.

Used by ``benchmarks.large_store`` (page times) and ``benchmarks.flat_cost`` (hot paths
on a large store). A million rows take about half a minute to a minute per backend.

The store looks like a week of work: finished jobs created evenly over the last 7 days
(so about 1/168 of them finished in the last hour), 2% FAILURE and 1% REVOKED, spread
over ``QUEUES`` queues, ``TASKS`` tasks and ``WORKERS`` workers; waiting jobs PENDING,
created over the last 10 minutes; delayed jobs SCHEDULED, created over the last 10
minutes to run over the next day, from an hour from now.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from conveyor import App, State
from conveyor.records import JobRecord

QUEUES = [f"q{i}" for i in range(8)]
TASKS = [f"bench.task{i}" for i in range(16)]
WORKERS = [f"worker-{i:02d}" for i in range(20)]
WEEK = 7 * 24 * 3600.0
BATCH = 10_000


def job_id(ms: int, n: int) -> str:
    """A UUIDv7 id for the millisecond ``ms`` (ids sort by creation, as ``ids.new_id``)."""
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    h = "%032x" % ((ms << 80) | (0x7 << 76) | ((n & 0xFFF) << 64) | (0b10 << 62) | rand)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rows(
    finished: int,
    waiting: int,
    now: float,
    queues: list[str] | None = None,
    keep: float = WEEK,
    delayed: int = 0,
) -> Iterator[dict[str, Any]]:
    """The store's rows, oldest first, as column -> value (times in POSIX seconds);
    finished ones are kept ``keep`` seconds after they ended (prunable now if <= 0)."""
    queues = queues or QUEUES
    for i in range(finished):
        created = now - WEEK + WEEK * i / max(1, finished)
        state = "FAILURE" if i % 50 == 7 else "REVOKED" if i % 100 == 3 else "SUCCESS"
        started = created + 0.01
        ended = started + 0.002 + (i % 10) * 0.001
        worker = WORKERS[i % len(WORKERS)]
        error = {"type": "ValueError", "message": f"bad input {i}"} if state == "FAILURE" else None
        yield {
            "id": job_id(int(created * 1000), i), "task": TASKS[i % len(TASKS)],
            "queue": queues[i % len(queues)], "priority": 0,
            "payload": orjson.dumps({"v": 1, "args": [i, f"order-{i}"], "kwargs": {}}),
            "state": state, "run_at": created, "created_at": created, "attempt": 1,
            "started_at": started, "finished_at": ended, "worker": worker,
            "result": None if state != "SUCCESS" else i, "error": error,
            "attempts": [{"attempt": 1, "worker": worker, "started_at": started,
                          "finished_at": ended, "state": state, "error": error}],
            "keep_until": ended + keep if keep > 0 else now + keep,
        }  # fmt: skip
    for i in range(waiting):  # due now, queued over the last 10 minutes
        yield _unstarted(i, waiting, now, queues, "PENDING", None)
    for i in range(delayed):  # due from an hour on, over a day
        yield _unstarted(
            i, delayed, now, queues, "SCHEDULED", now + 3600 + 86400 * i / max(1, delayed)
        )


def _unstarted(
    i: int, n: int, now: float, queues: list[str], state: str, run_at: float | None
) -> dict[str, Any]:
    """The ``i``th of ``n`` jobs that have not started: created over the last 10 minutes,
    due at ``run_at`` (None: when created)."""
    created = now - 600 + 600 * i / max(1, n)
    return {
        "id": job_id(int(created * 1000), i), "task": TASKS[i % len(TASKS)],
        "queue": queues[i % len(queues)], "priority": 0,
        "payload": orjson.dumps({"v": 1, "args": [i], "kwargs": {}}),
        "state": state, "run_at": created if run_at is None else run_at,
        "created_at": created, "attempt": 0, "started_at": None, "finished_at": None,
        "worker": None, "result": None, "error": None, "attempts": [], "keep_until": None,
    }  # fmt: skip


COLUMNS = ["id", "task", "queue", "priority", "payload", "state", "run_at", "created_at",
           "attempt", "started_at", "finished_at", "worker", "result", "error", "attempts",
           "keep_until"]  # fmt: skip
JSON = {"result", "error", "attempts"}


def build(
    app: App,
    finished: int,
    waiting: int,
    queues: list[str] | None = None,
    keep: float = WEEK,
    tidy: bool = True,
    delayed: int = 0,
) -> float:
    """Fill ``app``'s store; returns the seconds it took. ``tidy``: then trim the events
    the triggers wrote and refresh the planner's statistics (off: rows added to a store
    in use, a batch at a time)."""
    started = time.perf_counter()
    write(app, rows(finished, waiting, app.backend.now(), queues, keep, delayed), tidy)
    return time.perf_counter() - started


def records(source: Iterable[dict[str, Any]]) -> list[JobRecord]:
    """Finished rows made by ``rows`` as the records ``Backend.enqueue`` stores already
    finished (workflows record steps that will never run so): the backend's own script
    then writes each record, its entry in the finished set, the counts, the event and
    the id index in one step, as a finishing worker's does. The run's own fields (when
    it started, its worker, result and attempts) are left out: enqueue does not store
    them."""
    return [_finished(r) for r in source]


def _finished(r: dict[str, Any]) -> JobRecord:
    return JobRecord(
        id=r["id"], task=r["task"], queue=r["queue"], priority=r["priority"],
        payload=r["payload"], state=State(r["state"]), run_at=r["run_at"],
        created_at=r["created_at"], finished_at=r["finished_at"], error=r["error"],
        keep_until=r["keep_until"],
    )  # fmt: skip


def write(app: App, source: Iterable[dict[str, Any]], tidy: bool = True) -> None:
    """Write rows made by ``rows`` (``build``, or a caller that made them beforehand)."""
    kind = app.conf.backend_url.split(":")[0]
    source = iter(source)
    if kind == "sqlite":
        _sqlite(app, source, tidy)
    elif kind == "postgresql":
        _postgres(app, source, tidy)
    else:
        _redis(app, source)


def _batches(source: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in source:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _sql_values(row: dict[str, Any]) -> list[Any]:
    return [
        None if row[c] is None and c != "attempts" else orjson.dumps(row[c]).decode()
        if c in JSON else row[c]
        for c in COLUMNS
    ]  # fmt: skip


def _sqlite(app: App, source: Iterator[dict[str, Any]], tidy: bool) -> None:
    backend: Any = app.backend
    conn = backend._conn()
    sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    # A page cache that holds the indexes being filled (256 MiB, the default is 2 MiB):
    # with the default, every batch spilled index pages to the WAL again and again.
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size = -262144")
    try:
        with backend._write() as tx:
            for batch in _batches(source):
                tx.executemany(sql, [_sql_values(r) for r in batch])
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
    if not tidy:
        return
    backend.prune(limit=0)  # the insert trigger wrote an event per row: keep the last ones
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _postgres(app: App, source: Iterator[dict[str, Any]], tidy: bool) -> None:
    backend: Any = app.backend
    table = f'"{backend.schema}".jobs'
    with backend._tx() as conn:
        cur = conn.cursor()
        with cur.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for batch in _batches(source):
                for row in batch:
                    copy.write_row(_sql_values(row))
    if not tidy:
        return
    backend.prune(limit=0)
    # What autovacuum does on a real server (it is off on this machine): statistics and
    # the visibility map, without which no index-only scan skips the heap.
    with backend.pool.connection() as conn:
        conn.autocommit = True
        conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute(f'VACUUM ANALYZE "{backend.schema}".events')


def _redis(app: App, source: Iterator[dict[str, Any]]) -> None:
    # Pipelines, not the backend's scripts: a record's writes are not one step, and a
    # pruner running meanwhile can take its finished-set entry before its hash exists,
    # leaving a hash nothing prunes and a count that never falls. For a store no pruner
    # works on; a feed beside one writes through ``records`` and ``Backend.enqueue``.
    backend: Any = app.backend
    client = backend.client
    key = backend._key
    counts: Counter[str] = Counter()
    queues: set[str] = set()
    for batch in _batches(source):
        pipe = client.pipeline(transaction=False)
        for r in batch:
            fields: dict[str, Any] = {
                "task": r["task"], "queue": r["queue"], "priority": r["priority"],
                "payload": r["payload"], "state": r["state"], "run_at": repr(r["run_at"]),
                "created_at": repr(r["created_at"]), "max_retries": 0,
            }  # fmt: skip
            if r["finished_at"] is not None:
                fields.update(
                    attempt=1, started_at=repr(r["started_at"]), finished_at=repr(r["finished_at"]),
                    worker=r["worker"], result=orjson.dumps(r["result"]), error=orjson.dumps(r["error"]),
                    attempts=orjson.dumps(r["attempts"]), keep_until=repr(r["keep_until"]),
                )  # fmt: skip
                pipe.zadd(key("finished"), {r["id"]: r["keep_until"]})
                pipe.zadd(key("done"), {r["id"]: r["finished_at"]})
            elif r["state"] == "SCHEDULED":
                pipe.zadd(key("q", r["queue"], "delayed"), {r["id"]: r["run_at"]})
            else:
                score = (9 - r["priority"]) * 4398046511104 + int(r["run_at"] * 1000)
                pipe.zadd(key("q", r["queue"], "ready"), {r["id"]: score})
            pipe.hset(key("job", r["id"]), mapping=fields)
            pipe.zadd(key("all"), {r["id"]: 0})
            counts[f"{r['queue']}\0{r['state']}"] += 1
            queues.add(r["queue"])
        pipe.execute()
    pipe = client.pipeline(transaction=False)
    for field, n in counts.items():  # added to: the store may hold jobs already
        pipe.hincrby(key("counts"), field, n)
    pipe.sadd(key("queues"), *queues)
    pipe.execute()
    # The ids and each queue's waiting jobs, written to one sorted set each above (as an
    # earlier version did), into the paged id index and the due pages. The hashes keep
    # the long field names, which the backend reads as it reads its own short ones.
    backend.migrate()
