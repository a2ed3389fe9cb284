"""Where the time of a PostgreSQL drain goes, per job: the CPU of the worker tree and of
the PostgreSQL backends serving it, the share of the machine's cores left idle, commits,
rows written, WAL bytes and the statement triggers' time; then, replayed from this
process with the worker's own backend calls (``claim``, then ``ack_and_claim`` per
batch, no task run), the statements, commits, backend CPU and WAL of the store's half
alone, and ``EXPLAIN (ANALYZE, BUFFERS, WAL)`` of each statement of one batch.

    .venv/bin/python -m benchmarks.pg_profile                       # redis body, 10,000 jobs
    .venv/bin/python -m benchmarks.pg_profile --body noop --replay-only

Runs in a database of its own ($BENCH_POSTGRES, default .../pgspeed_profile, created if
missing), so the database's counters (``pg_stat_database``) count this run alone; WAL
is the server's (``pg_current_wal_lsn``): another client writing meanwhile adds to it.
The database's sessions run with ``track_functions = pl``, so ``pg_stat_user_functions``
times the trigger functions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from conveyor import State
from conveyor.records import Outcome
from conveyor.task import Signature

from . import flat_cost, worker

SERVER = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/pgspeed_profile")


def ensure_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
        # Every session of this database times the PL/pgSQL functions (the triggers).
        conn.execute(f'ALTER DATABASE "{name}" SET track_functions = pl')


class Server:
    """Counters of this run's database and schema, read before and after a window."""

    def __init__(self, schema: str) -> None:
        self.conn = psycopg.connect(worker.POSTGRES, autocommit=True, application_name="pg-profile")
        self.schema = schema

    def read(self) -> dict[str, float]:
        c = self.conn
        c.execute("SELECT pg_stat_clear_snapshot()")
        db = c.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, "
            "blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert db is not None
        wal = c.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')").fetchone()
        found = dict(zip(["commits", "rollbacks", "rows_inserted", "rows_updated", "rows_deleted",
                          "blocks"], map(float, db), strict=True))  # fmt: skip
        found["wal_bytes"] = float(wal[0]) if wal else 0.0
        for table, ins, upd, hot in c.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE schemaname = %s",
            (self.schema,),
        ).fetchall():
            found[f"{table}.inserted"], found[f"{table}.updated"] = float(ins), float(upd)
            found[f"{table}.hot_updated"] = float(hot)
        for name, calls, _total, own in c.execute(
            "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions "
            "WHERE schemaname = %s",
            (self.schema,),
        ).fetchall():
            found[f"{name}().calls"], found[f"{name}().ms"] = float(calls), float(own)
        return found


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def per_job(found: dict[str, float], n: int) -> dict[str, float]:
    return {k: v / n for k, v in found.items() if v}


def drain(tmp: Path, n: int, prefetch: str | None) -> dict[str, Any]:
    """A real worker (2 process-pool children, as the comparison runs it) drains ``n``
    jobs of the body in $BENCH_BODY; its startup (a burst worker with nothing to do) is
    measured apart and taken off its CPU."""
    app, url = worker.fresh(tmp, "profile")
    schema = app.backend.schema  # type: ignore[attr-defined]
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.work") for _ in range(min(1000, n - i))])
    worker.analyze(url)
    server = Server(schema)
    backends = flat_cost.PostgresCpu()
    args = ["-P", "process", "-c", "2", "--burst"]
    if prefetch is not None:
        args += ["--prefetch", prefetch]
    try:
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pg0, s0 = backends(), server.read()
        worker.start_worker(url, *args).wait(600)
        took = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        time.sleep(1.2)  # the backends' last statistics reach the shared counters
        pg1, s1 = backends(), server.read()
        # The same worker with nothing to do: its start and stop, not a job's cost.
        worker.start_worker(url, *args).wait(600)
        cpu2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pg2 = backends()
    finally:
        backends.stop()
    records = worker.finished_records(app, [j.id for j in jobs])
    if len(records) != n or any(r.state is not State.SUCCESS for r in records):
        raise RuntimeError("not every job succeeded")
    first = min(r.started_at or 0 for r in records)
    wall = max(r.finished_at or 0 for r in records) - first
    used = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    startup = (cpu2.ru_utime + cpu2.ru_stime) - (cpu1.ru_utime + cpu1.ru_stime)
    worker_cpu, pg_cpu = used - startup, (pg1 - pg0) - (pg2 - pg1)
    cores = os.cpu_count() or 1
    counters = delta(s0, s1)
    return {
        "jobs": n,
        "jobs_per_s": n / wall,
        "drain_s": wall,
        "worker_process_s": took,
        "us_per_job": {
            "wall (x cores)": wall / n * 1e6 * cores,
            "worker tree CPU": worker_cpu / n * 1e6,
            "postgres backends CPU": pg_cpu / n * 1e6,
            "worker startup CPU (apart)": startup / n * 1e6,
        },
        "idle_share_of_cores": 1 - (worker_cpu + pg_cpu) / (wall * cores),
        "per_job": per_job(counters, n),
        "load": os.getloadavg(),
    }


class Counting:
    """Counts the statements psycopg sends (``executemany``: one per parameter set)."""

    def __init__(self) -> None:
        self.statements = 0
        self.cursor = psycopg.Cursor
        self.saved = (self.cursor.execute, self.cursor.executemany)

    @contextmanager
    def on(self) -> Iterator[None]:
        execute, executemany = self.saved
        counter = self

        def counted_execute(cur: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            counter.statements += 1
            return execute(cur, query, params, **kw)

        def counted_many(cur: Any, query: Any, seq: Any, **kw: Any) -> Any:
            seq = list(seq)
            counter.statements += len(seq)
            return executemany(cur, query, seq, **kw)

        self.cursor.execute, self.cursor.executemany = counted_execute, counted_many  # type: ignore[method-assign]
        try:
            yield
        finally:
            self.cursor.execute, self.cursor.executemany = self.saved  # type: ignore[method-assign]


def replay(tmp: Path, n: int, batch: int, drop: list[str]) -> dict[str, Any]:
    """The store's half of a drain from one thread: claim ``batch``, then one
    ``ack_and_claim`` per batch (every job SUCCESS, nothing run) until none is left.
    ``drop``: indexes dropped first (what each costs)."""
    app, url = worker.fresh(tmp, "replay")
    backend: Any = app.backend
    for i in range(0, n, 1000):
        app.enqueue_many([Signature("bench.work") for _ in range(min(1000, n - i))])
    with backend._connection() as conn:
        for name in drop:
            conn.execute(f'DROP INDEX "{backend.schema}"."{name}"')
    worker.analyze(url)
    server, backends, counting = Server(backend.schema), flat_cost.PostgresCpu(), Counting()
    claims = 0
    try:
        s0, pg0, cpu0, t0 = server.read(), backends(), time.thread_time(), time.perf_counter()
        with counting.on():
            held = backend.claim(["default"], "w", batch, 30)
            while held:
                claims += 1
                outcomes = [Outcome(j.id, j.lease_token, State.SUCCESS) for j in held]
                _, held = backend.ack_and_claim(outcomes, ["default"], "w", batch, 30)
        took, cpu, pg = time.perf_counter() - t0, time.thread_time() - cpu0, backends() - pg0
        time.sleep(1.2)
        counters = delta(s0, server.read())
    finally:
        backends.stop()
    return {
        "jobs": n,
        "batch": batch,
        "dropped": drop,
        "jobs_per_s": n / took,
        "us_per_job": {
            "wall": took / n * 1e6,
            "client CPU": cpu / n * 1e6,
            "postgres backend CPU": pg / n * 1e6,
        },
        "statements_per_batch": counting.statements / claims,
        "per_job": per_job(counters, n),
        "explain": explain(tmp, batch),
    }


def explain(tmp: Path, batch: int, waiting: int = 10_000) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS, WAL) of one batch's statements, ``waiting`` jobs queued,
    each in a transaction rolled back (the store is left as it was)."""
    app, url = worker.fresh(tmp, "explain")
    backend: Any = app.backend
    for _ in range(0, waiting, 1000):
        app.enqueue_many([Signature("bench.work") for _ in range(1000)])
    worker.analyze(url)
    held = backend.claim(["default"], "w", batch, 30)
    now = backend.now()
    claim = {"queues": ["default"], "worker": "w", "now": now, "lease_until": now + 30,
             "limit": batch, "prefix": backend.lease_prefix}  # fmt: skip
    statements: list[tuple[str, dict[str, Any]]] = [("promote", {"now": now}), ("claim", claim)]
    outcomes = [Outcome(j.id, j.lease_token, State.SUCCESS) for j in held]
    if "settle" in backend._q:  # one statement a batch
        from conveyor.backends.postgres.backend import settle_params  # type: ignore[attr-defined]

        statements.insert(0, ("settle", settle_params(outcomes, now, now + 60)[0]))
    else:  # one UPDATE an outcome (the first shown), then the batch's rollup
        o = outcomes[0]
        statements.insert(0, ("finish", {"id": o.job_id, "token": o.token, "now": now, "error": None,
                                         "brief": None, "state": "SUCCESS", "keep_until": now + 60,
                                         "run_at": now, "result": "null"}))  # fmt: skip
        statements.insert(1, ("rollup_add", {"rows": json.dumps([[0, "default", 1, batch, 0]])}))
    plans = {}
    for name, params in statements:
        with backend._connection() as conn, conn.transaction(force_rollback=True):
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF) " + backend._q[name], params
            ).fetchall()
        plans[name] = "\n".join(r[0] for r in rows)
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--body", default="redis")
    parser.add_argument("--prefetch", default="8", help="the worker's --prefetch ('auto': unset)")
    parser.add_argument("--batch", type=int, default=5, help="the replay's claim size")
    parser.add_argument("--drop", default="", help="indexes the replay drops, comma-separated")
    parser.add_argument("--replay-only", action="store_true")
    parser.add_argument("--drain-only", action="store_true")
    args = parser.parse_args()
    worker.BACKEND, worker.POSTGRES = "postgres", SERVER
    ensure_database(SERVER)
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(BENCH_BODY=args.body, BENCH_BODY_DIR=folder,
                          BENCH_BODY_REDIS=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15"),
                          BENCH_BODY_KEY=f"bench:body:{os.getpid()}")  # fmt: skip
        try:
            if not args.replay_only:
                prefetch = None if args.prefetch == "auto" else args.prefetch
                found["drain"] = drain(Path(folder), args.jobs, prefetch)
            if not args.drain_only:
                drop = [d for d in args.drop.split(",") if d]
                found["replay"] = replay(Path(folder), args.jobs, args.batch, drop)
        finally:
            worker.cleanup()
    print(json.dumps(found, indent=2, default=str))


if __name__ == "__main__":
    main()
