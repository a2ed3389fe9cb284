"""Conveyor on PostgreSQL against procrastinate, measured in one run on the same server.

    .venv/bin/python -m benchmarks.compare_postgres            # 3 repetitions, a few minutes
    .venv/bin/python -m benchmarks.compare_postgres --quick    # 1 repetition, smaller counts

procrastinate is installed, pinned (benchmarks/peers/requirements-procrastinate.txt), into
its own venv under benchmarks/.peers/, and runs in a database of its own (bench_peer)
with its schema applied as its docs say. Contenders alternate within each repetition;
the table shows medians, the spread (min-max) and Conveyor's ratio. Server:
$BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test).
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


def ours(kind: str, n: int, tmp: Path) -> dict[str, float]:
    conveyor_bench.BACKEND = "postgres"
    try:
        if kind == "enqueue":
            return conveyor_bench.bench_enqueue(tmp, n)
        if kind == "throughput":
            return conveyor_bench.bench_throughput(tmp, n, 2)
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


METRICS = [
    ("enqueue", "single_per_s", "enqueue, single calls (jobs/s)", True),
    ("enqueue", "bulk_per_s", "enqueue, bulk (jobs/s)", True),
    ("throughput", "jobs_per_s", "no-op throughput, 2 worker processes (jobs/s)", True),
    ("latency", "p50_ms", "pickup latency p50 (ms)", False),
    ("latency", "p99_ms", "pickup latency p99 (ms)", False),
    ("sleep", "seconds", "200 x 50 ms at concurrency 20 (s; ideal 0.50)", False),
    ("memory", "rss_mib", "worker RSS, 2 processes, whole tree (MiB)", False),
    ("memory", "pss_mib", "worker PSS, 2 processes, whole tree (MiB)", False),
    ("bytes", "bytes_per_job", "table size per queued job, with indexes (bytes)", False),
]
#: Extra arguments of each workload for procrastinate_bench (processes, concurrency).
PEER_ARGS = {"throughput": ["2"], "sleep": ["20"], "memory": ["2"]}


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
    args = parser.parse_args()
    reps, n, lat = (1, 2000, 100) if args.quick else (3, 10_000, 300)
    reps = args.reps or reps
    sizes = {"enqueue": n // 2, "throughput": n, "latency": lat, "sleep": 200, "memory": 50,
             "bytes": n}  # fmt: skip
    if args.workloads:
        sizes = {k: v for k, v in sizes.items() if k in args.workloads.split(",")}
    server = conveyor_bench.POSTGRES
    env = setup_peer(server)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {"conveyor": {}, "procrastinate": {}}
    with tempfile.TemporaryDirectory() as folder:
        for rep in range(reps):
            for kind, size in sizes.items():
                if rep and kind in ("memory", "bytes"):
                    continue  # steady figures: measured once
                order = (
                    ["conveyor", "procrastinate"] if rep % 2 == 0 else ["procrastinate", "conveyor"]
                )
                for who in order:
                    extra = PEER_ARGS.get(kind, [])
                    # procrastinate drains ~200 jobs/s: a quarter of the jobs keeps the suite
                    # well under 15 minutes (a rate, so still comparable)
                    count = size // 4 if (who, kind) == ("procrastinate", "throughput") else size
                    got = (
                        ours(kind, count, Path(folder))
                        if who == "conveyor"
                        else peer(env, kind, str(count), *extra)
                    )
                    runs[who].setdefault(kind, []).append(got)
                    print(
                        f"rep {rep + 1}/{reps} {who:13} {kind:10} "
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
    print(f"\n{'metric':48} {'conveyor':>20} {'procrastinate':>20} {'ratio':>7}")
    for row in table:
        cells = [
            f"{row[w]['median']:,.1f} ({row[w]['min']:,.1f}-{row[w]['max']:,.1f})"
            for w in ("conveyor", "procrastinate")
        ]
        print(f"{row['metric']:48} {cells[0]:>20} {cells[1]:>20} {row['ratio']:>6.2f}x")


if __name__ == "__main__":
    main()
