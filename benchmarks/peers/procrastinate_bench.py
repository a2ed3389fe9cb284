"""Measures procrastinate (run inside its own venv by benchmarks.compare_postgres).

    python -m benchmarks.peers.procrastinate_bench enqueue N
    python -m benchmarks.peers.procrastinate_bench throughput N PROCESSES
    python -m benchmarks.peers.procrastinate_bench latency N
    python -m benchmarks.peers.procrastinate_bench sleep N CONCURRENCY
    python -m benchmarks.peers.procrastinate_bench memory N PROCESSES
    python -m benchmarks.peers.procrastinate_bench bytes N

Prints one JSON object. Times of execution come from procrastinate's own events table.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time

import psycopg

from .procrastinate_app import app, nap, noop

DSN = os.environ["BENCH_PEER_PG"]


def _sql(query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(DSN) as conn:
        return conn.execute(query).fetchall()


def _reset() -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs CASCADE")
    _analyze()


def _analyze() -> None:
    """Fresh planner statistics: this server runs with autovacuum off, and a table without
    them (just truncated) makes procrastinate's fetch sort every waiting job."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs")
        conn.execute("ANALYZE procrastinate_events")


def _workers(count: int, concurrency: int = 1) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "procrastinate", "--app", "benchmarks.peers.procrastinate_app.app", "worker",
           "--concurrency", str(concurrency)]  # fmt: skip
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]  # fmt: skip


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(30)


def _wait_done(n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _sql("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")[0][0] < n:
        if time.monotonic() > deadline:
            raise RuntimeError("procrastinate did not finish its jobs")
        time.sleep(0.05)


def _drain(n: int, processes: int, concurrency: int) -> float:
    """Run workers until ``n`` jobs succeeded; seconds from the first start to the last end."""
    procs = _workers(processes, concurrency)
    try:
        _wait_done(n)
    finally:
        _stop(procs)
    first, last = _sql("SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded') "
                       "FROM procrastinate_events")[0]  # fmt: skip
    return float((last - first).total_seconds())  # type: ignore[operator]


def enqueue(n: int) -> dict[str, float]:
    _reset()
    with app.open():
        started = time.perf_counter()
        for _ in range(n):
            noop.defer()
        single = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(0, n, 1000):
            noop.batch_defer(*[{} for _ in range(1000)])
        bulk = n / (time.perf_counter() - started)
    return {"single_per_s": single, "bulk_per_s": bulk}


def throughput(n: int, processes: int) -> dict[str, float]:
    _reset()
    with app.open():
        for i in range(0, n, 1000):
            noop.batch_defer(*[{} for _ in range(min(1000, n - i))])
    _analyze()
    seconds = _drain(n, processes, 1)
    return {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds}


def latency(n: int) -> dict[str, float]:
    _reset()
    procs = _workers(1)
    try:
        time.sleep(3.0)  # let the worker start and go idle
        with app.open():
            for _ in range(n):
                noop.defer()
                time.sleep(0.01)
        _wait_done(n)
    finally:
        _stop(procs)
    rows = _sql("SELECT extract(epoch FROM s.at - d.at) FROM procrastinate_events d "
                "JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started' WHERE d.type = 'deferred'")  # fmt: skip
    waits = sorted(float(r[0]) * 1000 for r in rows)
    q = statistics.quantiles(waits, n=100)
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


def sleep(n: int, concurrency: int, seconds: float = 0.05) -> dict[str, float]:
    _reset()
    with app.open():
        nap.batch_defer(*[{"seconds": seconds} for _ in range(n)])
    _analyze()
    took = _drain(n, 1, concurrency)
    ideal = n * seconds / concurrency
    return {"seconds": took, "ideal_seconds": ideal, "over_ideal_pct": (took / ideal - 1) * 100}


def memory(n: int, processes: int) -> dict[str, float]:
    import psutil

    _reset()
    procs = _workers(processes)
    try:
        time.sleep(2.0)
        with app.open():
            noop.batch_defer(*[{} for _ in range(n)])
        _wait_done(n)
        time.sleep(1.0)
        tree = [
            q
            for p in procs
            for q in (psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True))
        ]
        infos = [q.memory_full_info() for q in tree]
    finally:
        _stop(procs)
    return {"processes": len(tree), "rss_mib": sum(i.rss for i in infos) / 2**20,
            "pss_mib": sum(getattr(i, "pss", i.rss) for i in infos) / 2**20}  # fmt: skip


def bytes_per_job(n: int) -> dict[str, float]:
    _reset()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("VACUUM FULL procrastinate_jobs")
        before = conn.execute("SELECT pg_total_relation_size('procrastinate_jobs')").fetchone()[0]  # type: ignore[index]
        with app.open():
            for i in range(0, n, 1000):
                noop.batch_defer(*[{} for _ in range(min(1000, n - i))])
        after = conn.execute("SELECT pg_total_relation_size('procrastinate_jobs')").fetchone()[0]  # type: ignore[index]
    _reset()
    return {"bytes_per_job": (after - before) / n}


if __name__ == "__main__":
    kind, *numbers = sys.argv[1:]
    print(
        json.dumps(
            {
                "enqueue": enqueue,
                "throughput": throughput,
                "latency": latency,
                "sleep": sleep,
                "memory": memory,
                "bytes": bytes_per_job,
            }[kind](*map(int, numbers))
        )
    )
