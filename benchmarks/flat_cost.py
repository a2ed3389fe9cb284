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
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor import App, State
from conveyor.task import Signature

from . import bulk_store, worker

ROOT = Path(__file__).resolve().parents[1]


def with_store(store: tuple[App, str]) -> None:
    """Make ``worker.fresh`` give every measure the one ``store`` (the jobs each measure
    adds are few beside it)."""
    worker.fresh = lambda tmp, name: store  # restored by the caller


def build(tmp: Path, label: str, fill: Callable[[App], Any] | None) -> tuple[App, str]:
    store = worker.fresh(tmp, "store")
    if fill is not None:
        print(f"  {label}: built in {fill(store[0]):.0f}s", flush=True)
    return store


def measure(tmp: Path, store: tuple[App, str], n: int) -> dict[str, Any]:
    plain = worker.fresh
    with_store(store)
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


def expired_left(app: App) -> int:
    """Finished records left in the store's own queues (the measured jobs use ``default``)."""
    ends = (State.SUCCESS, State.FAILURE, State.REVOKED)
    return sum(
        n for (q, state), n in app.backend.counts().items() if q != "default" and state in ends
    )


def pruning(tmp: Path, size: int, n: int) -> dict[str, Any]:
    """The worker's pruner (``conveyor.worker.pruning``, default settings) over ``size``
    expired records: alone, on a thread of this process until half are gone; then the
    pruner of a worker draining ``n`` jobs, which is what runs in production; and, for
    that worker's throughput, one draining as many on an empty store just before."""
    from conveyor.worker.pruning import Pruner  # here: the rest runs on older code too

    baseline = worker.bench_throughput(tmp, n, 2)["jobs_per_s"]
    app, url = worker.fresh(tmp, "prune")
    bulk_store.build(app, size, 0, keep=-1)
    pruner = Pruner(app.backend, "bench", app.conf)
    thread = threading.Thread(target=pruner.run)
    t0 = time.perf_counter()
    thread.start()
    while pruner.deleted < size // 2 and thread.is_alive():
        time.sleep(0.01)
    alone = pruner.deleted / (time.perf_counter() - t0)
    pruner.stop()
    thread.join()
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.noop") for _ in range(min(1000, n - i))])
    samples: list[tuple[float, int]] = []  # (backend time, expired records left)
    proc = worker.start_worker(url, "-P", "process", "-c", "2", "--burst", "--prefetch", "8")
    while proc.poll() is None:
        samples.append((app.backend.now(), expired_left(app)))
        time.sleep(0.05)
    records = worker.finished_records(app, [j.id for j in jobs])
    first, last = min(r.started_at for r in records), max(r.finished_at for r in records)
    during = [left for at, left in samples if first <= at <= last]  # while it drained
    return {
        "alone_deleted_per_s": alone,
        "beside_worker_deleted_per_s": (during[0] - during[-1]) / (last - first),
        "worker_jobs_per_s_while_pruning": n / (last - first),
        "worker_jobs_per_s_empty_store": baseline,
    }


def steady(tmp: Path, n: int, ttl: float = 1.0) -> dict[str, Any]:
    """A worker drains ``n`` jobs whose records expire ``ttl`` seconds after they finish:
    its pruner deletes them as fast as they finish, or the records left grow. The most
    records left during the drain (about finish rate * (ttl + prune_interval) if it keeps
    up), the seconds after the drain until none are left, and the worker's throughput;
    then the same drain with the records kept (nothing to prune), for its throughput."""
    found = drain(tmp, n, ttl)
    kept = drain(tmp, n, None)
    return {**found, "worker_jobs_per_s_records_kept": kept["worker_jobs_per_s"]}


def drain(tmp: Path, n: int, ttl: float | None) -> dict[str, Any]:
    app, url = worker.fresh(tmp, "steady" if ttl else "kept")
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.noop") for _ in range(min(1000, n - i))])
    worker.analyze(url)
    os.environ["BENCH_RESULT_TTL"] = str(ttl or 7 * 24 * 3600)
    try:
        proc = worker.start_worker(url, "-P", "process", "-c", "2", "--prefetch", "8")
    finally:
        del os.environ["BENCH_RESULT_TTL"]
    left: list[tuple[float, int]] = []  # (time, finished records left), while it drains
    began = drained = None  # when the first job started, when none waits or runs any more
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts, now = app.backend.counts(), time.monotonic()
            queued = counts.get(("default", State.PENDING), 0)
            waiting = queued + counts.get(("default", State.STARTED), 0)
            began = began if began is not None or queued == n else now
            drained = drained if drained is not None or waiting else now
            left.append((now, counts.get(("default", State.SUCCESS), 0)))
            if drained is not None and (ttl is None or left[-1][1] == 0):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the pruner did not catch up within 120 s")
    finally:
        worker.stop(proc)
    if began is None or drained is None:
        raise RuntimeError("the worker did not drain its jobs")
    return {
        "jobs": n,
        "ttl_s": ttl,
        "most_records_left": max(x for _, x in left),
        "seconds_after_drain_until_none_left": left[-1][0] - drained,
        "worker_jobs_per_s": n / (drained - began),
    }


def keeping_up(tmp: Path, n: int, rate: int = 10_000, seconds: float = 30.0) -> dict[str, Any]:
    """Records expiring at ``rate`` a second, as a store finishing that many jobs a second
    would see (finished records written in bulk, already past their ``keep_until``: this
    machine cannot run 10,000 jobs a second on SQL), for ``seconds``, beside an idle
    worker whose pruner must delete them as they come; ``n`` jobs enqueued after 5 s
    are drained by that worker meanwhile. Sampled: the expired records left (bounded if
    the pruner keeps up), the seconds after the feed until none is left (None, and what
    is left, when that takes over 120 s), the worker's
    throughput, and the same worker's on a store with no feed just before."""
    baseline = worker.bench_throughput(tmp, n, 2)["jobs_per_s"]
    app, url = worker.fresh(tmp, "feed")
    proc = worker.start_worker(url, "-P", "process", "-c", "2", "--prefetch", "8")
    worker.wait_registered(app, proc)
    done = threading.Event()
    fed = 0

    def feed() -> None:
        nonlocal fed
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            due = int((time.monotonic() - began) * rate) - fed
            if due < 100:
                time.sleep(0.01)
                continue
            bulk_store.build(app, due, 0, keep=-1, tidy=False)
            fed += due
        done.set()

    feeder = threading.Thread(target=feed)
    began = time.monotonic()
    feeder.start()
    left: list[tuple[float, int]] = []  # (seconds since the feed began, expired left)
    jobs: list[Any] = []
    try:
        while not done.is_set() or not left or left[-1][1] > 0:
            if not jobs and time.monotonic() - began > 5:
                for _ in range(n // 1000):
                    jobs += app.enqueue_many([Signature("bench.noop") for _ in range(1000)])
            left.append((time.monotonic() - began, expired_left(app)))
            if time.monotonic() - began > seconds + 120:
                break  # not caught up 120 s after the feed: a figure too (what is left)
            time.sleep(0.2)
        deadline = time.monotonic() + 120
        while app.backend.counts().get(("default", State.SUCCESS), 0) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not drain its jobs")
            time.sleep(0.2)
    finally:
        feeder.join()
        worker.stop(proc)
    records = worker.finished_records(app, [j.id for j in jobs])
    first, last = min(r.started_at for r in records), max(r.finished_at for r in records)
    fed_for = max(t for t, _ in left if t <= seconds)
    return {
        "rate_per_s": rate,
        "fed": fed,
        "fed_per_s": fed / seconds,
        "most_expired_left": max(x for _, x in left),
        "expired_left_at_feed_end": [x for t, x in left if t <= seconds][-1],
        "seconds_after_feed_until_none_left": left[-1][0] - fed_for if left[-1][1] == 0 else None,
        "expired_left_120_s_after_feed": left[-1][1],
        "worker_jobs_per_s": n / (last - first),
        "worker_jobs_per_s_no_feed": baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000, help="backlog waiting")
    parser.add_argument("--kept", type=int, default=5_000_000, help="finished records kept")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per throughput run")
    parser.add_argument("--reps", type=int, default=3, help="rounds over the stores")
    parser.add_argument("--pruning", action="store_true", help="measure pruning only")
    parser.add_argument("--no-pruning", action="store_true", help="skip the pruning measures")
    parser.add_argument("--feed", type=int, default=0, help="only: pruning beside a feed of N/s")
    args = parser.parse_args()
    worker.BACKEND = args.backend
    size, n = args.size, args.jobs
    stores: dict[str, Callable[[App], Any] | None] = {
        "empty": None,
        f"{size:,} waiting": lambda app: bulk_store.build(app, 0, size, queues=["backlog"]),
        f"{args.kept:,} finished kept": lambda app: bulk_store.build(app, args.kept, 0),
    }
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            built = {}
            for i, (label, fill) in enumerate([] if args.pruning or args.feed else stores.items()):
                (tmp / str(i)).mkdir()  # SQLite: a file of its own for each store
                built[label] = (tmp / str(i), build(tmp / str(i), label, fill))
            # This machine's load drifts within minutes: the stores are measured in turn,
            # round after round, and each figure is compared within its round.
            for rep in range(args.reps if built else 0):
                for label, (where, store) in built.items():
                    found = measure(where, store, n)
                    results.setdefault(label, []).append(found)
                    print(f"  round {rep + 1}, {label}: enqueue "
                          f"{found['enqueue']['single_per_s']:,.0f}/s single, "
                          f"{found['enqueue']['bulk_per_s']:,.0f}/s bulk; throughput "
                          f"{found['throughput']['jobs_per_s']:,.0f} jobs/s; pickup p50 "
                          f"{found['pickup']['p50_ms']:.2f} ms, p99 {found['pickup']['p99_ms']:.2f} ms",
                          flush=True)  # fmt: skip
            if args.feed:
                results["keeping_up"] = keeping_up(tmp, n, args.feed)
                print(f"  keeping up: {results['keeping_up']}", flush=True)
            elif not args.no_pruning:
                results["pruning"] = pruning(tmp, size, n)
                print(f"  pruning: {results['pruning']}", flush=True)
                results["pruning_steady"] = steady(tmp, 5 * n)
                print(f"  pruning, steady: {results['pruning_steady']}", flush=True)
    finally:
        if args.backend != "sqlite":
            worker.cleanup()
    kind = "_feed" if args.feed else "_pruning" if args.pruning else ""
    name = f"flat_cost_{args.backend}{kind}.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps({"backend": args.backend, "size": size, "kept": args.kept,
                               "jobs": n, "reps": args.reps, **results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
