"""What one pruning batch costs on PostgreSQL, statement by statement, as the pruner
meets a store fed with expired records the way ``flat_cost --feed`` feeds them (chunks
written by ``COPY`` with the triggers, no ANALYZE): wall time, the commits (WAL
flushes) and WAL bytes of each statement, and the rows it wrote.

    .venv/bin/python -m benchmarks.prune_profile --expired 100000 --batch 1000 --batches 20
    .venv/bin/python -m benchmarks.prune_profile --trims --backend sqlite --refill

``--trims`` (SQLite or PostgreSQL): whole ``Backend.prune`` calls instead, a batch that
trims (``trim=True``, what every batch ran before the pruner trimmed once an interval)
and one that does not, in turns, with the same refill between batches: the median of
each, and the records a second flat out.

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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
