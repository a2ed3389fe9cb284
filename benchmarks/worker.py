"""Conveyor measured on one backend: enqueue rates, throughput, pickup latency, a sleep
workload, worker memory and the store's size per queued job. Every figure comes from a
real ``conveyor worker`` subprocess; times of execution come from the job records.

    .venv/bin/python -m benchmarks.worker --backend sqlite          # about a minute
    .venv/bin/python -m benchmarks.worker --backend redis --quick   # smaller counts

Redis runs use the server at $BENCH_REDIS (default redis://127.0.0.1:6379/15) under a
fresh key prefix, deleted afterwards. Writes a table to the terminal and JSON to
benchmarks/results/<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from conveyor import App, State
from conveyor.records import JobQuery
from conveyor.task import Signature

ROOT = Path(__file__).resolve().parents[1]


def start_worker(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONVEYOR_BACKEND": url}
    # BENCH_WORKER_LOG=<file>: the worker logs at debug level to that file (appended).
    logged = os.environ.get("BENCH_WORKER_LOG")
    cmd = [
        sys.executable,
        "-m",
        "conveyor",
        "-A",
        "benchmarks.app:app",
        "worker",
        "-l",
        "debug" if logged else "warning",
        *args,
    ]
    err = open(logged, "ab") if logged else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                            start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


BACKEND = "sqlite"
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_prefixes: list[str] = []


def fresh(tmp: Path, name: str) -> tuple[App, str]:
    if BACKEND == "redis":
        prefix = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        _prefixes.append(prefix)
        url = f"{REDIS}?prefix={prefix}"
    elif BACKEND == "postgres":
        prefix = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        _prefixes.append(prefix)
        url = f"{POSTGRES}?schema={prefix}"
    else:
        url = f"sqlite:///{tmp / name}.db"
    app = App("producer", backend=url)
    app.backend.counts()  # create the schema before timing anything
    return app, url


def wait_registered(app: App, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not any(w.pid == proc.pid for w in app.backend.workers()):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the worker did not start")
        time.sleep(0.02)


def finished_records(app: App, ids: list[str]) -> list[Any]:
    found = []
    for i in range(0, len(ids), 500):
        found += list(app.backend.get_many(ids[i : i + 500]).values())
    return found


Window = Callable[..., AbstractContextManager[Any]]


def untimed(name: str, **where: Any) -> AbstractContextManager[Any]:
    """The window a measure opens around its timed part by default: none (flat_cost
    passes one that counts CPU time there)."""
    return nullcontext()


def bench_enqueue(tmp: Path, n: int, window: Window = untimed) -> dict[str, float]:
    app, _ = fresh(tmp, "enqueue")
    send = app.send_task
    with window("enqueue_single"):
        t0 = time.perf_counter()
        for _ in range(n):
            send("bench.noop")
        single = n / (time.perf_counter() - t0)
    sigs = [Signature("bench.noop") for _ in range(n)]
    with window("enqueue_bulk"):
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            app.enqueue_many(sigs[i : i + 1000])
        bulk = n / (time.perf_counter() - t0)
    return {"single_per_s": single, "bulk_per_s": bulk}


def analyze(url: str) -> None:
    """Fresh planner statistics for a PostgreSQL run's tables (this server runs with
    autovacuum off; the comparison gives every contender the same)."""
    if BACKEND != "postgres":
        return
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(f'ANALYZE "{schema}"."{table}"')


def bench_throughput(
    tmp: Path,
    n: int,
    processes: int,
    task: str = "bench.noop",
    window: Window = untimed,
    auto_prefetch: bool = False,
) -> dict[str, float]:
    """``n`` jobs drained by ``processes`` process-pool children with ``--prefetch``
    4 a child (the figures' series since 2026-11); ``auto_prefetch``: without it, the
    worker's default (docs/worker.md)."""
    app, url = fresh(tmp, "throughput")
    analyze(url)
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature(task) for _ in range(min(1000, n - i))])
    analyze(url)
    with window("throughput"):
        prefetch = [] if auto_prefetch else ["--prefetch", str(processes * 4)]
        proc = start_worker(url, "-P", "process", "-c", str(processes), "--burst", *prefetch)
        proc.wait(600)
    records = finished_records(app, [j.id for j in jobs])
    if len(records) != n or any(r.state is not State.SUCCESS for r in records):
        raise RuntimeError("not every throughput job succeeded")
    first = min(r.started_at for r in records)
    last = max(r.finished_at for r in records)
    return {"jobs": n, "seconds": last - first, "jobs_per_s": n / (last - first)}


def bench_thread_drain(tmp: Path, n: int, threads: int = 8) -> dict[str, float]:
    """A thread-pool worker drains ``n`` no-op jobs (``--burst``, auto prefetch): jobs a
    second from the first start to the last finish, and the worker's CPU per job."""
    app, url = fresh(tmp, "threads")
    jobs = []
    for i in range(0, n, 1000):
        jobs += app.enqueue_many([Signature("bench.noop") for _ in range(min(1000, n - i))])
    analyze(url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = start_worker(url, "-P", "thread", "-c", str(threads), "--burst")
    proc.wait(600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = finished_records(app, [j.id for j in jobs])
    if len(records) != n or any(r.state is not State.SUCCESS for r in records):
        raise RuntimeError("not every drained job succeeded")
    took = max(r.finished_at for r in records) - min(r.started_at for r in records)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"jobs": n, "seconds": took, "jobs_per_s": n / took, "cpu_us_per_job": cpu / n * 1e6}


def bench_latency(tmp: Path, n: int) -> dict[str, float]:
    app, url = fresh(tmp, "latency")
    proc = start_worker(url, "-P", "process", "-c", "2")
    try:
        wait_registered(app, proc)
        time.sleep(1.0)  # let the worker settle into its idle wait
        jobs = []
        for _ in range(n):
            jobs.append(app.send_task("bench.noop"))
            time.sleep(0.01)
        deadline = time.monotonic() + 60
        while app.backend.list_jobs(JobQuery(states=[State.PENDING, State.STARTED], limit=1)):
            if time.monotonic() > deadline:
                raise RuntimeError("latency jobs did not finish")
            time.sleep(0.05)
    finally:
        stop(proc)
    waits = sorted(
        (r.started_at - r.created_at) * 1000 for r in finished_records(app, [j.id for j in jobs])
    )
    q = statistics.quantiles(waits, n=100)
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


def bench_sleep(
    tmp: Path, jobs_n: int = 200, seconds: float = 0.05, concurrency: int = 20
) -> dict[str, float]:
    app, url = fresh(tmp, "sleep")
    jobs = app.enqueue_many([Signature("bench.sleep", (seconds,)) for _ in range(jobs_n)])
    proc = start_worker(
        url, "-P", "thread", "-c", str(concurrency), "--burst", "--prefetch", str(concurrency)
    )
    proc.wait(600)
    records = finished_records(app, [j.id for j in jobs])
    took = max(r.finished_at for r in records) - min(r.started_at for r in records)
    ideal = jobs_n * seconds / concurrency
    return {"seconds": took, "ideal_seconds": ideal, "over_ideal_pct": (took / ideal - 1) * 100}


def bench_memory(tmp: Path, processes: int) -> dict[str, float]:
    app, url = fresh(tmp, "memory")
    proc = start_worker(url, "-P", "process", "-c", str(processes))
    try:
        wait_registered(app, proc)
        for _ in range(50):
            app.send_task("bench.noop")
        time.sleep(2.0)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        infos = [p.memory_full_info() for p in tree]
        cpu_before = sum(sum(p.cpu_times()[:2]) for p in tree)
        time.sleep(5.0)  # idle: nothing queued
        idle_cpu = (sum(sum(p.cpu_times()[:2]) for p in tree) - cpu_before) / 5.0 * 100
    finally:
        stop(proc)
    return {
        "processes": len(tree),
        "rss_mib": sum(i.rss for i in infos) / 2**20,
        "pss_mib": sum(getattr(i, "pss", i.rss) for i in infos) / 2**20,
        "idle_cpu_pct": idle_cpu,
    }


def bench_bytes_per_job(tmp: Path, n: int) -> dict[str, float]:
    app, url = fresh(tmp, "size")
    if BACKEND == "redis":
        client: Any = app.backend.client  # type: ignore[attr-defined]
        before = client.info("memory")["used_memory"]
        for i in range(0, n, 1000):
            app.enqueue_many([Signature("bench.noop", (i,)) for _ in range(1000)])
        return {"bytes_per_job": (client.info("memory")["used_memory"] - before) / n}
    if BACKEND == "postgres":
        for i in range(0, n, 1000):
            app.enqueue_many([Signature("bench.noop", (i,)) for _ in range(1000)])
        with app.backend._tx() as conn:  # type: ignore[attr-defined]
            row = conn.execute(
                "SELECT pg_total_relation_size(%s)", (f'"{app.backend.schema}".jobs',)
            ).fetchone()  # type: ignore[attr-defined]
        return {"bytes_per_job": row[0] / n}
    path = Path(url.removeprefix("sqlite:///"))
    app.backend._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    before = path.stat().st_size
    for i in range(0, n, 1000):
        app.enqueue_many([Signature("bench.noop", (i,)) for _ in range(1000)])
    app.backend._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    return {"bytes_per_job": (path.stat().st_size - before) / n}


def cleanup() -> None:
    if BACKEND == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            for schema in _prefixes:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    import redis

    client = redis.Redis.from_url(REDIS)
    for prefix in _prefixes:
        keys = list(client.scan_iter(match=f"conveyor:{{{prefix}}}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])


def main() -> None:
    global BACKEND
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    args = parser.parse_args()
    BACKEND = args.backend
    try:
        run(args.quick)
    finally:
        if BACKEND in ("redis", "postgres"):
            cleanup()


def run(quick: bool) -> None:
    n = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        results = {
            "enqueue": bench_enqueue(tmp, n // 2),
            "throughput_noop_2_processes": bench_throughput(tmp, n, 2),
            "throughput_noop_8_threads": bench_thread_drain(tmp, n),
            "pickup_latency_idle": bench_latency(tmp, 100 if quick else 300),
            "sleep_200x50ms_c20": bench_sleep(tmp),
            "worker_memory_2_processes": bench_memory(tmp, 2),
            "disk_per_queued_job": bench_bytes_per_job(tmp, n),
        }
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "backend": BACKEND,
        "quick": quick,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{BACKEND}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )
    print(json.dumps(meta))
    for name, values in results.items():
        print(f"{name:32} " + "  ".join(f"{k}={v:,.1f}" for k, v in values.items()))


if __name__ == "__main__":
    main()
