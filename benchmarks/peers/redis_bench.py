"""One workload for one contender on Redis; run by benchmarks.compare_redis inside the
contender's own venv (Conveyor's for Conveyor). Prints one JSON object.

    python -m benchmarks.peers.redis_bench CONTENDER enqueue|throughput|latency|sleep|memory|bytes|cpu N

Every contender's task records a line with its times (benchmarks.peers.stamps: in a
per-process file, or on the server with $BENCH_BODY=redis), so finished jobs are counted,
and their times read, the same way for all of them. Needs
BENCH_REDIS_URL (a server of the driver's own: this flushes its db) and BENCH_STAMPS (an
empty folder). Workers are each contender's real worker command, with 2 processes.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import redis

from . import stamps

ROOT = Path(__file__).resolve().parents[2]
URL = os.environ["BENCH_REDIS_URL"]
STAMPS = os.environ["BENCH_STAMPS"]
MODULES = {"conveyor": "conveyor_app", "celery": "celery_app", "celery+results": "celery_app",
           "dramatiq": "dramatiq_app", "huey": "huey_app", "taskiq": "taskiq_app",
           "saq": "saq_app", "rq": "rq_app"}  # fmt: skip


def flush() -> None:
    redis.Redis.from_url(URL).flushdb()


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    binary = str(Path(sys.executable).parent / argv[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(Path(STAMPS) / "worker.log", "ab")  # noqa: SIM115 - the worker writes it
    return subprocess.Popen([binary, *argv[1:]], cwd=ROOT, env=env, stdout=log, stderr=log,
                            start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for leftover in psutil.process_iter():  # children some pools leave behind
        try:
            if leftover.environ().get("BENCH_STAMPS") == STAMPS and leftover.pid != os.getpid():
                leftover.kill()
        except psutil.Error:
            pass


def wait_count(n: int, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while stamps.count(STAMPS) < n:
        if time.monotonic() > deadline or proc.poll() is not None:
            log = (Path(STAMPS) / "worker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{stamps.count(STAMPS)}/{n} jobs done; worker log:\n{log}")
        time.sleep(0.01)


def send_many(mod: ModuleType, n: int) -> None:
    if mod.send_bulk is not None:
        mod.send_bulk(n)
    else:
        for _ in range(n):
            mod.send()


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Microseconds each command has spent inside Redis since it started."""
    found = client.info("commandstats")
    return {name.removeprefix("cmdstat_").upper(): v["usec"] for name, v in found.items()}


def sent_commands(mod: ModuleType, calls: int) -> Counter[str]:
    """The commands a single send makes the server run at the client's request (each a
    round trip, or a part of a pipeline), by MONITOR: not those its scripts run."""
    seen: Counter[str] = Counter()
    marks: list[str] = []
    with redis.Redis.from_url(URL).monitor() as monitor:

        def listen() -> None:
            for entry in monitor.listen():
                name, _, rest = entry["command"].partition(" ")
                if name.upper() == "ECHO" and "bench-mark" in rest:
                    marks.append(rest)
                    if "end" in rest:
                        return
                elif marks and entry["client_type"] != "lua":
                    seen[name.upper()] += 1

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        other = redis.Redis.from_url(URL)
        deadline = time.monotonic() + 10
        while not marks and time.monotonic() < deadline:  # MONITOR is on once it sees one
            other.echo("bench-mark-start")
            time.sleep(0.01)
        for _ in range(calls):
            mod.send()
        other.echo("bench-mark-end")
        thread.join(10)
    return Counter({name: count / calls for name, count in seen.items()})


def enqueue(mod: ModuleType, n: int) -> dict[str, Any]:
    """Jobs/s of single calls and of the bulk API; for the single calls also what each
    costs: the commands it sends (round trips), the producer's CPU and the time those
    commands spend inside Redis (``INFO commandstats``, its scripts' commands included;
    the server is the driver's own)."""
    flush()
    mod.send()  # connect, load scripts: not per call
    sent = sent_commands(mod, 200)
    client = redis.Redis.from_url(URL)
    before = commandstats(client)
    cpu, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        mod.send()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    inside = sum(us - before.get(k, 0) for k, us in commandstats(client).items() if k in sent)
    single = n / wall
    flush()
    bulk = None
    if mod.send_bulk is not None:
        t0 = time.perf_counter()
        mod.send_bulk(n)
        bulk = n / (time.perf_counter() - t0)
    flush()
    return {"single_per_s": single, "bulk_per_s": bulk, "single_cpu_us": cpu / n * 1e6,
            "single_redis_us": inside / n, "single_commands": sum(sent.values()),
            "single_sent": dict(sent)}  # fmt: skip


def throughput(mod: ModuleType, n: int) -> dict[str, Any]:
    flush()
    send_many(mod, n)
    proc = start(mod.worker_argv(2))
    try:
        wait_count(n, proc)
    finally:
        stop(proc)
    ends = [now for _, now in stamps.read(STAMPS)]
    return {"jobs": n, "seconds": max(ends) - min(ends), "jobs_per_s": n / (max(ends) - min(ends))}


def tree_cpu(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """CPU seconds (user + system) of the worker's whole process tree so far, and of its
    first process alone."""
    root = psutil.Process(proc.pid)
    total = first = 0.0
    for member in [root, *root.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
        if member is root:
            first = times.user + times.system
    return total, first


def server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu(mod: ModuleType, n: int) -> dict[str, Any]:
    """CPU that load does not move: the worker tree's and redis-server's, per job, over a
    backlog drain. The worker starts and runs a few jobs first (its start-up is not per
    job), then its process group is stopped (SIGSTOP) while the backlog is enqueued, so it
    drains a full queue as in ``throughput`` and the enqueue's server CPU is measured apart.
    """
    flush()
    client = redis.Redis.from_url(URL)
    proc = start(mod.worker_argv(2))
    try:
        done = warm(mod, proc)
        os.killpg(proc.pid, signal.SIGSTOP)
        worker_before, server_before = tree_cpu(proc), server_cpu(client)
        send_many(mod, n)
        server_enqueued = server_cpu(client)
        os.killpg(proc.pid, signal.SIGCONT)
        wait_count(done + n, proc)
        worker_after, server_after = tree_cpu(proc), server_cpu(client)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
        stop(proc)
    return {
        "worker_cpu_s_per_10k": (worker_after[0] - worker_before[0]) * 10_000 / n,
        "worker_parent_cpu_s_per_10k": (worker_after[1] - worker_before[1]) * 10_000 / n,
        "server_us_per_job": (server_after - server_enqueued) * 1e6 / n,
        "server_enqueue_us_per_job": (server_enqueued - server_before) * 1e6 / n,
    }


def warm(mod: ModuleType, proc: subprocess.Popen[bytes], jobs: int = 5) -> int:
    """Run a few jobs (sent=0: not measured) so the worker is up and idle; returns them."""
    for _ in range(jobs):
        mod.send(0.0)
    wait_count(jobs, proc, 60)
    time.sleep(0.5)
    return jobs


def latency(mod: ModuleType, n: int) -> dict[str, Any]:
    flush()
    proc = start(mod.worker_argv(2))
    try:
        done = warm(mod, proc)
        for _ in range(n):
            mod.send(time.time())
            time.sleep(0.01)
        wait_count(done + n, proc, 60)
    finally:
        stop(proc)
    waits = sorted((now - sent) * 1000 for sent, now in stamps.read(STAMPS) if sent > 0)
    q = statistics.quantiles(waits, n=100)
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


def sleep(mod: ModuleType, n: int, seconds: float = 0.05, concurrency: int = 20) -> dict[str, Any]:
    flush()
    mod.send_nap(seconds, n)
    proc = start(mod.sleep_argv(concurrency))
    try:
        wait_count(n, proc)
    finally:
        stop(proc)
    rows = stamps.read(STAMPS)
    took = max(end for _, end in rows) - min(begin for begin, _ in rows)
    ideal = n * seconds / concurrency
    return {"seconds": took, "ideal_seconds": ideal, "over_ideal_pct": (took / ideal - 1) * 100}


def memory(mod: ModuleType, n: int) -> dict[str, Any]:
    flush()
    proc = start(mod.worker_argv(2))
    try:
        warm(mod, proc, n)
        time.sleep(1.0)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        infos = [p.memory_full_info() for p in tree]
    finally:
        stop(proc)
    return {"processes": len(tree), "rss_mib": sum(i.rss for i in infos) / 2**20,
            "pss_mib": sum(getattr(i, "pss", i.rss) for i in infos) / 2**20}  # fmt: skip


def bytes_per_job(mod: ModuleType, n: int) -> dict[str, Any]:
    flush()
    client = redis.Redis.from_url(URL)
    send_many(mod, 10)  # connections, scripts and empty structures are not per job
    before = client.info("memory")["used_memory"]
    send_many(mod, n)
    after = client.info("memory")["used_memory"]
    flush()
    return {"bytes_per_job": (after - before) / n}


WORKLOADS = {"enqueue": enqueue, "throughput": throughput, "latency": latency, "sleep": sleep,
             "memory": memory, "bytes": bytes_per_job, "cpu": cpu}  # fmt: skip


def main() -> None:
    contender, workload, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if contender == "celery+results":
        os.environ["BENCH_CELERY_RESULTS"] = "1"
    mod = importlib.import_module(f"benchmarks.peers.{MODULES[contender]}")
    print(json.dumps(WORKLOADS[workload](mod, n)))


if __name__ == "__main__":
    main()
