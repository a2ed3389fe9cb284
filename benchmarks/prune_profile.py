"""What one pruning batch costs on PostgreSQL, statement by statement, as the pruner
meets a store fed with expired records the way ``flat_cost --feed`` feeds them (chunks
written by ``COPY`` with the triggers, no ANALYZE): wall time, the commits (WAL
flushes) and WAL bytes of each statement, and the rows it wrote.

    .venv/bin/python -m benchmarks.prune_profile --expired 100000 --batch 1000 --batches 20
    .venv/bin/python -m benchmarks.prune_profile --trims --backend sqlite --refill
    chrt -f 10 .venv/bin/python -m benchmarks.prune_profile --redis --expired 60000 --against ../main

``--trims`` (SQLite or PostgreSQL): whole ``Backend.prune`` calls instead, a batch that
trims (``trim=True``, what every batch ran before the pruner trimmed once an interval)
and one that does not, in turns, with the same refill between batches: the median of
each, and the records a second flat out.

``--redis``: where a Redis prune script's time goes. A worker drains ``--expired`` jobs
(one Redis call each, records kept: benchmarks.prune_drain), their finished set is set
to expire them all, and the store is saved (RDB) and reloaded before each variant of the
prune script deletes it all in batches of ``--batch``: as shipped, ``--against``'s
(another checkout's), and with one part left out (the id index, the records' DEL, the
counts' HMGET; measures only, each leaves a wrong store). Per record: the
redis-server's CPU and the script's time inside Redis (``INFO commandstats``).

Runs in a database of its own ($BENCH_POSTGRES, default .../prune_profile, created if
missing), in a schema dropped afterwards, so the database's commits count this run
alone (``pg_stat_database``); WAL is the server's (``pg_current_wal_lsn``): another
client writing meanwhile adds to it, so WAL bytes are a ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from conveyor import App

from . import bulk_store, pg_profile, worker

SERVER = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/prune_profile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--expired", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--refill", action="store_true",
                        help="write a batch of expired records (untimed) before each batch, "
                        "with their events, as a feed does")  # fmt: skip
    parser.add_argument(
        "--trims", action="store_true", help="whole prune calls, trimming and not, in turns"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--redis", action="store_true", help="the Redis prune script's parts")
    parser.add_argument("--against", type=Path, help="with --redis: another checkout's script")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.redis:
        print(json.dumps(redis_parts(args), indent=2))
        return
    if args.trims:
        print(json.dumps(trims(args), indent=2))
        return
    pg_profile.ensure_database(SERVER)
    worker.POSTGRES = SERVER
    schema = f"bench_prof_{uuid.uuid4().hex[:8]}"
    app = App("producer", backend=f"{worker.POSTGRES}?schema={schema}")
    backend: Any = app.backend
    backend.counts()
    try:
        for i in range(0, args.expired, 10_000):  # as the feed writes them
            bulk_store.build(app, min(10_000, args.expired - i), 0, keep=-1, tidy=False)
        refill = (
            (lambda: bulk_store.build(app, args.batch, 0, keep=-1, tidy=False))
            if args.refill
            else None
        )
        found = profile(backend, args.batch, args.batches, refill)
        print(json.dumps({"expired": args.expired, "refill": args.refill, **found}, indent=2))
    finally:
        with psycopg.connect(worker.POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def trims(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        worker.BACKEND = args.backend
        app, _ = worker.fresh(Path(folder), "trims")
        try:
            for i in range(0, args.expired, 10_000):  # as the feed writes them
                bulk_store.build(app, min(10_000, args.expired - i), 0, keep=-1, tidy=False)
            spent: dict[bool, list[float]] = {True: [], False: []}
            deleted = dict.fromkeys(spent, 0)
            for n in range(2 * args.batches):
                if args.refill:  # untimed
                    bulk_store.build(app, args.batch, 0, keep=-1, tidy=False)
                trim = n % 2 == 0
                started = time.perf_counter()
                deleted[trim] += app.backend.prune(limit=args.batch, trim=trim)
                spent[trim].append(time.perf_counter() - started)
        finally:
            if args.backend == "postgres":
                worker.cleanup()
    return {
        "backend": args.backend, "expired": args.expired, "batch": args.batch,
        "batches_each": args.batches, "refill": args.refill,
        **{f"{'trim' if t else 'no_trim'}_median_ms": statistics.median(v) * 1000
           for t, v in spent.items()},
        **{f"{'trim' if t else 'no_trim'}_records_per_s": deleted[t] / sum(v)
           for t, v in spent.items()},
    }  # fmt: skip


def profile(
    backend: Any, batch: int, batches: int, refill: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Each prune statement of ``batches`` batches, run one by one on the pruner's own
    autocommit connection, as ``SQLVerbs.prune`` and ``PostgresBackend._prune`` run them."""
    from conveyor.backends.base import AUDIT_KEPT, EVENTS_KEPT
    from conveyor.backends.rollup import ROLLUP_KEPT

    q = backend._q
    spent: dict[str, list[float]] = defaultdict(list)
    stats = psycopg.connect(worker.POSTGRES, autocommit=True)

    def counters() -> tuple[int, int]:
        stats.execute("SELECT pg_stat_clear_snapshot()")
        commits = stats.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        lsn = stats.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        return int(commits[0]) if commits else 0, int(lsn[0]) if lsn else 0

    deleted, took, commits, wal = 0, 0.0, 0, 0
    for _ in range(batches):
        if refill is not None:
            refill()  # untimed, uncounted
        c0, w0 = counters()
        t0 = time.perf_counter()
        now = backend.now()
        steps = [
            ("prune_jobs", {"now": now, "limit": batch}),
            ("prune_events", {"keep": EVENTS_KEPT}),
            ("prune_audit", {"keep": AUDIT_KEPT}),
            ("prune_kv", {"now": now}),
            ("prune_groups", {"now": now}),
            ("prune_run_minutes", {"horizon": now - ROLLUP_KEPT}),
            ("fold_counts", {"lock": f"conveyor-fold:{backend.schema}"}),
            ("fold_run_minutes", {"lock": f"conveyor-fold-runs:{backend.schema}"}),
        ]
        for name, params in steps:
            with backend._connection() as conn:
                started = time.perf_counter()
                n = conn.execute(q[name], params).rowcount
                spent[name].append((time.perf_counter() - started) * 1000)
                if name == "prune_jobs":
                    deleted += n
        took += time.perf_counter() - t0
        c1, w1 = counters()
        commits, wal = commits + c1 - c0 - 3, wal + w1 - w0  # 3: the counters' own reads
    stats.close()
    return {
        "batch": batch,
        "batches": batches,
        "deleted": deleted,
        "records_per_s_flat_out": deleted / took,
        "ms_per_batch": took / batches * 1000,
        "median_ms": {k: round(statistics.median(v), 2) for k, v in spent.items()},
        "commits_per_batch": commits / batches,
        "wal_bytes_per_record": wal / max(1, deleted),
    }


#: The prune script with one part left out: (what, the line taken out of prune.lua).
REDIS_PARTS = {
    "no id index": "\nix_remove_many(P, ids)\n",
    "no DEL": 'for i = 1, #keys, 1000 do redis.call("DEL", unpack(keys, i, math.min(i + 999, #keys))) end',
    "no HMGET": '  local f = redis.call("HMGET", key, "queue", "state")\n  if f[1] then tally(f[1], f[2], -1) end',
}  # fmt: skip


def redis_parts(args: argparse.Namespace) -> dict[str, Any]:
    import redis

    from . import prune_drain
    from .redis_server import RedisServer

    worker.BACKEND = "redis"
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder), persistent=False)
        try:
            worker.REDIS = server.url
            run = prune_drain.Run("redis", server, "redis")
            prune_drain.drain(run, Path(folder), args.expired, None)
            client = redis.Redis.from_url(server.url)
            finished = next(iter(client.scan_iter(match="*:finished")))
            prefix = finished.decode().rsplit(":", 1)[0]
            ids = client.zrange(finished, 0, -1)
            for i in range(0, len(ids), 1000):
                client.zadd(finished, dict.fromkeys(ids[i : i + 1000], 1))  # all expired
            client.save()
            shipped = App("p", backend=f"{server.url}?prefix={prefix[10:-1]}").backend
            scripts = {"shipped": shipped._script("prune")[1]}  # type: ignore[attr-defined]
            if args.against:
                scripts["against"] = prune_drain.prune_script(args.against.resolve() / "src")
            for part, line in REDIS_PARTS.items():
                assert line in scripts["shipped"], part
                scripts[part] = scripts["shipped"].replace(line, "\n")
            found: dict[str, list[dict[str, float]]] = {}
            for _ in range(args.rounds):
                for name, body in scripts.items():
                    server.restart()  # reloads the saved store
                    found.setdefault(name, []).append(
                        prune_all(redis.Redis.from_url(server.url), body, prefix, args.batch)
                    )
                    print(f"  {name}: {found[name][-1]}", flush=True)
        finally:
            server.stop()
    return {"expired": args.expired, "batch": args.batch, "load": os.getloadavg(), **found}


def prune_all(client: Any, body: str, prefix: str, batch: int) -> dict[str, float]:
    sha = client.script_load(body)
    client.config_resetstat()
    cpu = client.info("cpu")
    before = cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    n = 0
    while got := client.evalsha(sha, 1, f"{prefix}:ids", prefix, 1e10, batch):
        n += got
    cpu = client.info("cpu")
    spent = cpu["used_cpu_user"] + cpu["used_cpu_sys"] - before
    stats = client.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    return {"records": n, "server_cpu_us": round(spent * 1e6 / n, 2),
            "script_us": round(stats["cmdstat_evalsha"]["usec"] / n, 2),
            "commands": round((calls - stats["cmdstat_evalsha"]["calls"]) / n, 3)}  # fmt: skip


if __name__ == "__main__":
    main()
