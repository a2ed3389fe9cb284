"""Cost that stays flat as the store grows: enqueue, throughput and pickup latency on an
empty store, with a large backlog waiting, and with many finished records kept; and how
fast pruning deletes finished records, alone and beside a draining worker.

    .venv/bin/python -m benchmarks.flat_cost --backend sqlite
    .venv/bin/python -m benchmarks.flat_cost --backend postgres --size 200000

Each store is built in bulk by ``benchmarks.bulk_store``; the figures come from the same
functions as ``benchmarks.worker`` (a real ``conveyor worker`` subprocess, times from
the job records). The backlog waits in a queue the measuring worker does not consume
(``backlog``): in SQL it shares the jobs table and its claim index with the measured
jobs; on Redis it shares the job hashes and the id index, and has its own ready set.
Results go to the terminal and benchmarks/results/flat_cost_<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor import App
from conveyor.task import Signature

from . import bulk_store, worker

ROOT = Path(__file__).resolve().parents[1]


def with_store(fill: Callable[[App], Any] | None) -> None:
    """Make ``worker.fresh`` give every measure one store, filled by ``fill`` (the jobs
    each measure adds are few beside it)."""
    plain = worker.fresh
    made: list[tuple[App, str]] = []

    def fresh(tmp: Path, name: str) -> tuple[App, str]:
        if not made:
            made.append(plain(tmp, "store"))
            if fill is not None:
                print(f"    built the store in {fill(made[0][0]):.0f}s", flush=True)
        return made[0]

    worker.fresh = fresh  # restored by the caller


def measure(tmp: Path, fill: Callable[[App], Any] | None, n: int) -> dict[str, Any]:
    plain = worker.fresh
    with_store(fill)
    try:
        return {
            "enqueue": worker.bench_enqueue(tmp, n // 5),
            "throughput": worker.bench_throughput(tmp, n, 2),
            "pickup": latency(tmp, 100),
        }
    finally:
        worker.fresh = plain


def latency(tmp: Path, n: int) -> dict[str, float]:
    """``worker.bench_latency``, waiting for its own jobs (a backlog may wait beside them)."""
    app, url = worker.fresh(tmp, "latency")
    proc = worker.start_worker(url, "-P", "process", "-c", "2")
    try:
        worker.wait_registered(app, proc)
        time.sleep(1.0)  # let the worker settle into its idle wait
        ids = []
        for _ in range(n):
            ids.append(app.send_task("bench.noop").id)
            time.sleep(0.01)
        deadline = time.monotonic() + 60
        while any(r.finished_at is None for r in worker.finished_records(app, ids)):
            if time.monotonic() > deadline:
                raise RuntimeError("latency jobs did not finish")
            time.sleep(0.05)
    finally:
        worker.stop(proc)
    waits = sorted((r.started_at - r.created_at) * 1000 for r in worker.finished_records(app, ids))
    q = statistics.quantiles(waits, n=100)
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


def pruning(tmp: Path, size: int, n: int) -> dict[str, Any]:
    """Delete ``size`` expired records with ``prune`` calls in a loop (as a worker's rescue
    loop does), alone, then while a worker drains ``n`` jobs."""
    app, url = worker.fresh(tmp, "prune")
    bulk_store.build(app, size, 0, keep=-1)
    t0 = time.perf_counter()
    deleted = 0
    half = size // 2
    while deleted < half and (done := app.backend.prune(limit=1000)):
        deleted += done
    alone = deleted / (time.perf_counter() - t0)
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.noop") for _ in range(min(1000, n - i))])
    stop = threading.Event()
    beside = {"deleted": 0}

    def prune_loop() -> None:
        t = time.perf_counter()
        while not stop.is_set() and (done := app.backend.prune(limit=1000)):
            beside["deleted"] += done
        beside["seconds"] = time.perf_counter() - t

    pruner = threading.Thread(target=prune_loop)
    pruner.start()
    proc = worker.start_worker(url, "-P", "process", "-c", "2", "--burst", "--prefetch", "8")
    proc.wait(600)
    stop.set()
    pruner.join()
    records = worker.finished_records(app, [j.id for j in jobs])
    took = max(r.finished_at for r in records) - min(r.started_at for r in records)
    return {
        "alone_deleted_per_s": alone,
        "beside_worker_deleted_per_s": beside["deleted"] / beside["seconds"],
        "worker_jobs_per_s_while_pruning": n / took,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000, help="backlog / records kept")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per throughput run")
    args = parser.parse_args()
    worker.BACKEND = args.backend
    size, n = args.size, args.jobs
    stores: dict[str, Callable[[App], Any] | None] = {
        "empty": None,
        f"{size:,} waiting": lambda app: bulk_store.build(app, 0, size, queues=["backlog"]),
        f"{size:,} finished kept": lambda app: bulk_store.build(app, size, 0),
        "empty, again": None,  # this machine's load drifts: the empty figure twice
    }
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            for i, (label, fill) in enumerate(stores.items()):
                print(f"  {label}:", flush=True)
                (tmp / str(i)).mkdir()  # SQLite: new files for each store
                results[label] = found = measure(tmp / str(i), fill, n)
                print(f"    enqueue {found['enqueue']['single_per_s']:,.0f}/s single, "
                      f"{found['enqueue']['bulk_per_s']:,.0f}/s bulk; throughput "
                      f"{found['throughput']['jobs_per_s']:,.0f} jobs/s; pickup p50 "
                      f"{found['pickup']['p50_ms']:.2f} ms, p99 {found['pickup']['p99_ms']:.2f} ms",
                      flush=True)  # fmt: skip
                if args.backend != "sqlite":
                    worker.cleanup()
                    worker._prefixes.clear()
            results["pruning"] = pruning(tmp, size, n)
            print(f"  pruning: {results['pruning']}", flush=True)
    finally:
        if args.backend != "sqlite":
            worker.cleanup()
    out = ROOT / "benchmarks" / "results" / f"flat_cost_{args.backend}.json"
    out.write_text(
        json.dumps({"backend": args.backend, "size": size, "jobs": n, **results}, indent=2)
    )


if __name__ == "__main__":
    main()
