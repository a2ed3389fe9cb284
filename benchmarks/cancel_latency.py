"""How long a revoke with terminate takes to stop a running job, per backend and pool:
from ``revoke()`` returning to the job's process being gone (process pool: its child
killed) or the job seeing the order (thread pool, where a task stops when it looks), and
to its record ending REVOKED. The worker keeps the default heartbeat (2 s): the push, not
the heartbeat, has to bring the revoke.

    .venv/bin/python -m benchmarks.cancel_latency                    # every backend and pool
    .venv/bin/python -m benchmarks.cancel_latency --backends sqlite --pools process --trials 10

Each trial starts one 10 s job on an idle worker (concurrency 1), waits until it runs,
waits a random 50-300 ms (so revokes land anywhere between two heartbeats), revokes it
with terminate and times the stop. Also measured: the worker process's CPU while idle
(the revocation watch's share of it is what a worker pays when nobody revokes).
Redis and PostgreSQL as for ``benchmarks.worker`` ($BENCH_REDIS, $BENCH_POSTGRES), under
a fresh prefix or schema, removed afterwards. Writes benchmarks/results/cancel_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from conveyor import App, State

from . import worker as bench

ROOT = Path(__file__).resolve().parents[1]
JOB_SECONDS = 10.0


def wait_for(predicate: Any, timeout: float, what: str, poll: float = 0.0005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def gone(pid: int) -> bool:
    """The process is dead (a zombie not yet reaped by its parent counts as dead)."""
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True


def stopped_at(pool: str, pid: int, path: Path) -> float:
    """Wall time at which the job was seen stopped (polled every 0.5 ms)."""
    if pool == "process":
        wait_for(lambda: gone(pid), 30, "the child to be killed")
        return time.time()
    marker = Path(f"{path}.stopped")
    wait_for(lambda: marker.exists() and marker.read_text(), 30, "the task to stop")
    return float(marker.read_text())


def trial(app: App, tmp: Path, pool: str, n: int) -> tuple[float, float]:
    """(ms to stopped, ms to REVOKED recorded) for one revoke of a running job."""
    path = tmp / f"job-{bench.BACKEND}-{pool}-{n}"
    job = app.send_task("bench.cancellable", (str(path), JOB_SECONDS))
    pid = int(wait_for(lambda: path.exists() and path.read_text(), 30, "the job to start"))
    time.sleep(random.uniform(0.05, 0.3))
    revocation = job.revoke(terminate=True)
    returned = time.time()
    if revocation.outcome != "terminating":
        raise RuntimeError(f"the job was not running: {revocation.message}")
    stopped = stopped_at(pool, pid, path)
    record = wait_for(
        lambda: (r := app.backend.get(job.id)).state.finished and r, 30, "REVOKED", poll=0.002
    )
    if record.state is not State.REVOKED:
        raise RuntimeError(f"job {job.id} ended {record.state}, not REVOKED")
    return (stopped - returned) * 1000, (record.finished_at - returned) * 1000


def idle_cpu(proc: Any, seconds: float = 5.0) -> float:
    """CPU the worker's own process (not its children) uses while idle, in percent."""
    worker = psutil.Process(proc.pid)
    before = worker.cpu_times()
    time.sleep(seconds)
    after = worker.cpu_times()
    return (after.user + after.system - before.user - before.system) / seconds * 100


def measure(backend: str, pool: str, trials: int, tmp: Path) -> dict[str, float]:
    bench.BACKEND = backend
    app, url = bench.fresh(tmp, f"cancel_{pool}")
    proc = bench.start_worker(url, "-P", pool, "-c", "1")
    try:
        bench.wait_registered(app, proc)
        time.sleep(1.0)  # settle into the idle wait
        cpu = idle_cpu(proc)
        stops, records = [], []
        for n in range(trials):
            stop_ms, record_ms = trial(app, tmp, pool, n)
            stops.append(stop_ms)
            records.append(record_ms)
    finally:
        bench.stop(proc)
    q_stop, q_record = statistics.quantiles(stops, n=100), statistics.quantiles(records, n=100)
    return {
        "trials": trials,
        "stopped_p50_ms": q_stop[49],
        "stopped_p99_ms": q_stop[98],
        "stopped_max_ms": max(stops),
        "revoked_p50_ms": q_record[49],
        "revoked_p99_ms": q_record[98],
        "idle_worker_cpu_percent": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backends", default="sqlite,redis,postgres")
    parser.add_argument("--pools", default="process,thread")
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends.split(","):
            try:
                for pool in args.pools.split(","):
                    results[f"{backend}/{pool}"] = found = measure(
                        backend, pool, args.trials, Path(folder)
                    )
                    print(
                        f"{backend:9} {pool:8} stopped p50 {found['stopped_p50_ms']:6.1f} ms  "
                        f"p99 {found['stopped_p99_ms']:6.1f} ms  | REVOKED recorded p50 "
                        f"{found['revoked_p50_ms']:6.1f} ms  p99 {found['revoked_p99_ms']:6.1f} ms  "
                        f"| idle worker CPU {found['idle_worker_cpu_percent']:.2f} %",
                        flush=True,
                    )
            finally:
                if backend in ("redis", "postgres"):
                    bench.cleanup()
                    bench._prefixes.clear()
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "job_seconds": JOB_SECONDS,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "cancel_latency.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
