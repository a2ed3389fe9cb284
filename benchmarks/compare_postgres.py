"""Conveyor on PostgreSQL against procrastinate, measured in one run on the same server.

    .venv/bin/python -m benchmarks.compare_postgres            # 3 repetitions, a few minutes
    .venv/bin/python -m benchmarks.compare_postgres --quick    # 1 repetition, smaller counts

procrastinate is installed, pinned (benchmarks/peers/requirements-procrastinate.txt), into
its own venv under benchmarks/.peers/, and runs in a database of its own (bench_peer)
with its schema applied as its docs say. Contenders alternate within each repetition;
the table shows medians, the spread (min-max) and Conveyor's ratio. Server:
$BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test).

Throughput runs with four task bodies (benchmarks/peers/bodies.py: one Redis call on
$BENCH_REDIS, the headline; a file append; ``time.sleep(0)``; nothing) and two backlog
sizes (10,000 and 1,000 waiting). Every contender's tables are ANALYZEd after each reset
and after each backlog is filled: this server runs with autovacuum off, and a freshly
truncated table without statistics made procrastinate's fetch sort every waiting job, so
the ratio measured the planner. procrastinate's sleep task is a coroutine, as its docs
recommend for I/O: a sync task runs on asyncio's default pool of 6 threads here and
could never run 20 at once. Conveyor's worker runs at its default (auto prefetch: up to
32 jobs a claim for short ones), as ``compare_redis`` runs it and as a user runs it;
``--prefetch 8`` (each child claims 5 at a time) continues the series before 2026-12-01.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from . import worker as conveyor_bench

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "benchmarks" / ".peers" / "procrastinate"
PEER_DB = "bench_peer"


def setup_peer(server: str) -> dict[str, str]:
    if not (PEER_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "-r",
                    str(ROOT / "benchmarks" / "peers" / "requirements-procrastinate.txt")], check=True)  # fmt: skip
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PEER_DB}")
        conn.execute(f"CREATE DATABASE {PEER_DB}")
    env = {**os.environ, "BENCH_PEER_PG": server.rsplit("/", 1)[0] + f"/{PEER_DB}"}
    subprocess.run([str(PEER_VENV / "bin" / "python"), "-m", "procrastinate", "--app",
                    "benchmarks.peers.procrastinate_app.app", "schema", "--apply"],
                   cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
    return env


def peer(env: dict[str, str], *args: str) -> dict[str, float]:
    done = subprocess.run([str(PEER_VENV / "bin" / "python"), "-m", "benchmarks.peers.procrastinate_bench", *args],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ours(kind: str, n: int, tmp: Path, auto_prefetch: bool = False) -> dict[str, float]:
    conveyor_bench.BACKEND = "postgres"
    try:
        if kind == "enqueue":
            return conveyor_bench.bench_enqueue(tmp, n)
        if kind == "throughput":
            return conveyor_bench.bench_throughput(
                tmp, n, 2, "bench.work", auto_prefetch=auto_prefetch
            )
        if kind == "sleep":
            return conveyor_bench.bench_sleep(tmp, n, 0.05, 20)
        if kind == "memory":
            return conveyor_bench.bench_memory(tmp, 2)
        if kind == "bytes":
            return conveyor_bench.bench_bytes_per_job(tmp, n)
        return conveyor_bench.bench_latency(tmp, n)
    finally:
        conveyor_bench.cleanup()
        conveyor_bench._prefixes.clear()


#: The task bodies (benchmarks/peers/bodies.py); the first is the headline.
BODIES = {"redis": "one Redis call", "file": "a file append", "sleep": "time.sleep(0)",
          "noop": "nothing"}  # fmt: skip
#: Backlog sizes of the throughput runs: the ratio must not depend on the planner.
BACKLOGS = (10_000, 1_000)
METRICS = [
    ("enqueue", "single_per_s", "enqueue, single calls (jobs/s)", True),
    ("enqueue", "bulk_per_s", "enqueue, bulk (jobs/s)", True),
    *[
        (
            f"throughput@{body}@{size}",
            "jobs_per_s",
            f"throughput, 2 worker processes, {size:,} waiting, task: {text} (jobs/s)",
            True,
        )
        for body, text in BODIES.items()
        for size in BACKLOGS
    ],
    ("latency", "p50_ms", "pickup latency p50 (ms)", False),
    ("latency", "p99_ms", "pickup latency p99 (ms)", False),
    ("sleep", "seconds", "200 x 50 ms at concurrency 20 (s; ideal 0.50)", False),
    ("memory", "rss_mib", "worker RSS, 2 processes, whole tree (MiB)", False),
    ("memory", "pss_mib", "worker PSS, 2 processes, whole tree (MiB)", False),
    ("bytes", "bytes_per_job", "table size per queued job, with indexes (bytes)", False),
]
#: Extra arguments of each workload for procrastinate_bench (processes, concurrency).
PEER_ARGS = {"throughput": ["2"], "sleep": ["20"], "memory": ["2"]}
#: The Redis server of the ``redis`` body (one INCR of a key of this run's own).
BODY_REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")


def summarize(
    runs: dict[str, dict[str, list[dict[str, float]]]], sizes: dict[str, int]
) -> list[dict[str, Any]]:
    """Medians with the spread for each metric measured, and Conveyor's ratio."""
    table = []
    for kind, key, label, higher_better in METRICS:
        if kind not in sizes:
            continue
        row: dict[str, Any] = {"metric": label}
        for who in runs:
            values = [r[key] for r in runs[who][kind]]
            row[who] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        a, b = row["conveyor"]["median"], row["procrastinate"]["median"]
        row["ratio"] = a / b if higher_better else b / a  # > 1: Conveyor is better
        table.append(row)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--workloads", help="comma-separated workloads (default: all)")
    parser.add_argument("--bodies", help="comma-separated task bodies (default: all)")
    parser.add_argument("--prefetch", choices=["8", "auto"], default="auto",
                        help="Conveyor's worker: its default, auto, or --prefetch 8 (the series before 2026-12-01)")  # fmt: skip
    args = parser.parse_args()
    reps, n, lat = (1, 2000, 100) if args.quick else (3, 10_000, 300)
    reps = args.reps or reps
    bodies = args.bodies.split(",") if args.bodies else list(BODIES)
    backlogs = [n, n // 10]
    sizes = {"enqueue": n // 2,
             **{f"throughput@{b}@{size}": size for b in bodies for size in backlogs},
             "latency": lat, "sleep": 200, "memory": 50, "bytes": n}  # fmt: skip
    if args.workloads:
        wanted = args.workloads.split(",")
        sizes = {k: v for k, v in sizes.items() if k in wanted or k.split("@")[0] in wanted}
    server = conveyor_bench.POSTGRES
    env = setup_peer(server)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {"conveyor": {}, "procrastinate": {}}
    with tempfile.TemporaryDirectory() as folder:
        os.environ["BENCH_BODY_DIR"] = folder
        os.environ["BENCH_BODY_REDIS"] = BODY_REDIS
        os.environ["BENCH_BODY_KEY"] = f"bench:body:{os.getpid()}"
        for rep in range(reps):
            for name, size in sizes.items():
                kind, _, body = name.partition("@")
                os.environ["BENCH_BODY"] = body.split("@")[0] or "noop"
                env.update({k: v for k, v in os.environ.items() if k.startswith("BENCH_BODY")})
                if rep and kind in ("memory", "bytes"):
                    continue  # steady figures: measured once
                order = (
                    ["conveyor", "procrastinate"] if rep % 2 == 0 else ["procrastinate", "conveyor"]
                )
                for who in order:
                    extra = PEER_ARGS.get(kind, [])
                    # Same backlog for both: with fresh statistics procrastinate drains
                    # ~1,000 jobs/s here, and the ratio is asked at two backlog sizes.
                    got = (
                        ours(kind, size, Path(folder), args.prefetch == "auto")
                        if who == "conveyor"
                        else peer(env, kind, str(size), *extra)
                    )
                    runs[who].setdefault(name, []).append(got)
                    print(
                        f"rep {rep + 1}/{reps} {who:13} {name:22} "
                        + "  ".join(f"{k}={v:,.2f}" for k, v in got.items()),
                        flush=True,
                    )
    table = summarize(runs, sizes)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "repetitions": reps, "jobs": n,
            "machine": f"{os.cpu_count()} cores", "procrastinate": "3.10.0"}  # fmt: skip
    if not args.workloads:  # a partial run is printed, not kept as the suite's result
        (ROOT / "benchmarks" / "results" / "postgres-vs-procrastinate.json").write_text(
            json.dumps({"meta": meta, "table": table}, indent=2) + "\n"
        )
    print(f"\n{'metric':80} {'conveyor':>20} {'procrastinate':>20} {'ratio':>7}")
    for row in table:
        cells = [
            f"{row[w]['median']:,.1f} ({row[w]['min']:,.1f}-{row[w]['max']:,.1f})"
            for w in ("conveyor", "procrastinate")
        ]
        print(f"{row['metric']:80} {cells[0]:>20} {cells[1]:>20} {row['ratio']:>6.2f}x")


if __name__ == "__main__":
    main()
