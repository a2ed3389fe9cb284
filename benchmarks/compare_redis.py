"""Conveyor on Redis against Celery (with and without its result backend), Dramatiq,
Huey, Taskiq, SAQ and RQ, measured in one run on one redis-server.

    .venv/bin/python -m benchmarks.compare_redis            # 3 repetitions, ~10 minutes
    .venv/bin/python -m benchmarks.compare_redis --quick    # 1 repetition, smaller counts
    .venv/bin/python -m benchmarks.compare_redis --only conveyor,huey

Each peer is installed, pinned (benchmarks/peers/requirements-<peer>.txt), into its own
venv under benchmarks/.peers/ and runs its own worker command with 2 processes. The
redis-server is the driver's own (a free port, no persistence, like the machine's), so a
contender's leftovers are flushed between runs without touching anyone's data. Within a
repetition the workloads run in turn, and for each the contenders run in an order that
rotates every repetition. Throughput, pickup latency and CPU a job (the worker tree's
and redis-server's: the machine's load moves it far less than wall time; by default
with the first body only, ``--workloads cpu`` for all) run once per body
(``--bodies``; benchmarks/peers/stamps.py): one Redis call (the headline), a file
append, ``time.sleep(0)``. Redis peers that use redis-py have hiredis, as Conveyor does.
Results: medians with the spread (min-max), Conveyor's ratio to each peer, JSON in
benchmarks/results/redis-vs-peers.json and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
VENVS = ROOT / "benchmarks" / ".peers"
CONTENDERS = ["conveyor", "celery", "celery+results", "dramatiq", "huey", "taskiq", "saq", "rq"]
#: Contenders slower than Conveyor run fewer jobs where only a rate is measured (still
#: comparable; a smaller backlog, if anything, flatters the peer), so the suite stays
#: under 15 minutes: the 10,000-job drain (RQ forks a process per job, ~100 jobs/s here;
#: Celery 500-1,100; the others 2,000-4,000, and filling their queues is slow too) and
#: the 5,000-call enqueue (all but Huey send 1,000-4,000 jobs/s).
SMALLER = {
    "throughput": {"rq": 20, "celery": 4, "celery+results": 4, "dramatiq": 2, "huey": 2,
                   "taskiq": 2, "saq": 2},
    "enqueue": {"celery": 2, "celery+results": 2, "dramatiq": 2, "taskiq": 2, "saq": 2, "rq": 2},
}  # fmt: skip
SMALLER["cpu"] = SMALLER["throughput"]  # a drain too, measured in CPU seconds a job
#: The task bodies every contender runs (benchmarks/peers/stamps.py); the first is the headline.
BODIES = {"redis": "one Redis call", "file": "a file append", "sleep": "time.sleep(0)"}
#: Workloads measured once per body: ``<workload>@<body>``.
PER_BODY = ("throughput", "latency", "cpu")
#: (workload, key, label, higher is better)
METRICS = [
    ("enqueue", "single_per_s", "enqueue, single calls (jobs/s)", True),
    ("enqueue", "single_cpu_us", "enqueue, single calls: producer CPU a call (µs)", False),
    ("enqueue", "single_redis_us", "enqueue, single calls: time inside Redis a call (µs)", False),
    ("enqueue", "single_commands", "enqueue, single calls: commands (round trips) a call", False),
    ("enqueue", "bulk_per_s", "enqueue, bulk API (jobs/s)", True),
    *[
        row
        for body, text in BODIES.items()
        for row in [
            (f"throughput@{body}", "jobs_per_s", f"no-op throughput, 2 processes, task: {text} (jobs/s)", True),
            (f"latency@{body}", "p50_ms", f"pickup latency p50, task: {text} (ms)", False),
            (f"latency@{body}", "p99_ms", f"pickup latency p99, task: {text} (ms)", False),
            (f"cpu@{body}", "worker_cpu_s_per_10k", f"worker tree CPU for 10,000 jobs, task: {text} (s)", False),
            (f"cpu@{body}", "server_us_per_job", f"redis-server CPU a job run, task: {text} (µs)", False),
        ]
    ],
    ("sleep", "seconds", "200 x 50 ms at concurrency 20 (s; ideal 0.50)", False),
    ("memory", "rss_mib", "worker RSS, 2 processes, whole tree (MiB)", False),
    ("memory", "pss_mib", "worker PSS, 2 processes, whole tree (MiB)", False),
    ("bytes", "bytes_per_job", "Redis memory per queued job (bytes)", False),
]  # fmt: skip


def python_of(who: str) -> Path:
    if who == "conveyor":
        return Path(sys.executable)
    name = who.split("+")[0]
    return VENVS / name / "bin" / "python"


def setup_peer(name: str) -> str:
    """Create or update the peer's venv from its pinned requirements; returns its version."""
    venv = VENVS / name
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    "-r", str(PEERS / f"requirements-{name}.txt")], check=True)  # fmt: skip
    for line in (PEERS / f"requirements-{name}.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==")[1]
    return "?"


@contextmanager
def redis_server() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    server = RedisServer(Path(folder), persistent=False)
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def measure(who: str, workload: str, n: int, url: str) -> dict[str, Any]:
    """One workload (``throughput@redis``: with that task body) for one contender."""
    workload, _, body = workload.partition("@")
    with tempfile.TemporaryDirectory(prefix="bench-stamps-") as stamps:
        env = {**os.environ, "BENCH_REDIS_URL": url, "BENCH_STAMPS": stamps,
               "BENCH_BODY": body or "file", "PYTHONPATH": str(ROOT)}  # fmt: skip
        done = subprocess.run([str(python_of(who)), "-m", "benchmarks.peers.redis_bench", who, workload, str(n)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{who} {workload} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    table = []
    for workload, key, label, higher_better in METRICS:
        row: dict[str, Any] = {"metric": label, "higher_is_better": higher_better}
        for who, by_workload in runs.items():
            values = [r[key] for r in by_workload.get(workload, []) if r.get(key) is not None]
            row[who] = (
                {"median": statistics.median(values), "min": min(values), "max": max(values)}
                if values
                else None
            )
        peers = [row[w]["median"] for w in runs if w != "conveyor" and row[w]]
        ours = row["conveyor"]["median"] if row.get("conveyor") else None
        if peers and ours:
            best = max(peers) if higher_better else min(peers)
            row["best_peer"] = best
            row["ratio_to_best"] = ours / best if higher_better else best / ours  # > 1: ahead
        table.append(row)
    return table


def markdown(table: list[dict[str, Any]], contenders: list[str]) -> str:
    lines = ["| metric | " + " | ".join(contenders) + " | Conveyor vs best peer |",
             "|---" * (len(contenders) + 2) + "|"]  # fmt: skip
    for row in table:
        cells = []
        for who in contenders:
            cell = row.get(who)
            if cell is None:
                cells.append("n/a")
            else:
                fmt = (
                    "{:,.0f}"
                    if cell["median"] >= 100
                    else "{:,.1f}"
                    if cell["median"] >= 10
                    else "{:,.2f}"
                )
                text = fmt.format(cell["median"])
                if cell["min"] != cell["max"]:  # the spread over repetitions
                    text += f" ({fmt.format(cell['min'])}-{fmt.format(cell['max'])})"
                cells.append(text)
        ratio = row.get("ratio_to_best")
        tail = f"{ratio:.2f}x" if ratio else "-"
        lines.append(f"| {row['metric']} | " + " | ".join(cells) + f" | {tail} |")
    return "\n".join(lines)


def ratios_markdown(table: list[dict[str, Any]], contenders: list[str]) -> str:
    """Conveyor's ratio to each peer, metric by metric (> 1: Conveyor is ahead)."""
    peers = [c for c in contenders if c != "conveyor"]
    lines = ["| metric | " + " | ".join(peers) + " |", "|---" * (len(peers) + 1) + "|"]
    for row in table:
        ours, cells = row.get("conveyor"), []
        for who in peers:
            theirs = row.get(who)
            if not ours or not theirs:
                cells.append("n/a")
                continue
            a, b = ours["median"], theirs["median"]
            cells.append(f"{(a / b if row['higher_is_better'] else b / a):.2f}x")
        lines.append(f"| {row['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 repetition, smaller counts")
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--workloads", help="comma-separated workloads (default: all)")
    parser.add_argument(
        "--bodies", help=f"comma-separated task bodies (default: {','.join(BODIES)})"
    )
    args = parser.parse_args()
    contenders = args.only.split(",") if args.only else CONTENDERS
    reps = args.reps or (1 if args.quick else 3)
    n = 2_000 if args.quick else 10_000
    base = {"enqueue": n // 2, "throughput": n, "cpu": n, "latency": 100 if args.quick else 200,
            "sleep": 200, "memory": 50, "bytes": n}  # fmt: skip
    bodies = args.bodies.split(",") if args.bodies else list(BODIES)
    sizes = {
        name: size
        for workload, size in base.items()
        for name in ([f"{workload}@{b}" for b in bodies] if workload in PER_BODY else [workload])
    }
    if args.workloads:
        wanted = args.workloads.split(",")
        sizes = {k: v for k, v in sizes.items() if k in wanted or k.split("@")[0] in wanted}
    else:  # CPU a job with the headline body only, unless asked for (~10 s a contender)
        sizes = {
            k: v for k, v in sizes.items() if not k.startswith("cpu@") or k == f"cpu@{bodies[0]}"
        }
    versions = {
        name: setup_peer(name) for name in {c.split("+")[0] for c in contenders} - {"conveyor"}
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {who: {} for who in contenders}
    started = time.monotonic()
    with redis_server() as url:
        for rep in range(reps):
            for workload, size in sizes.items():
                if rep and workload in ("memory", "bytes"):
                    continue  # steady figures: measured once
                order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
                for who in order:
                    smaller = SMALLER.get(workload.split("@")[0], {}).get(who, 1)
                    count = max(100, size // smaller)
                    began = time.monotonic()
                    got = measure(who, workload, count, url)
                    runs[who].setdefault(workload, []).append(got)
                    shown = "  ".join(f"{k}={v:,.2f}" if isinstance(v, int | float) else f"{k}={v}"
                                       for k, v in got.items() if v is not None)  # fmt: skip
                    took = time.monotonic() - began
                    print(
                        f"rep {rep + 1}/{reps} {workload:10} {who:15} {shown}  ({took:.1f}s)",
                        flush=True,
                    )
    table = summarize(runs)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "redis": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2],
        "versions": versions, "repetitions": reps, "jobs": n, "quick": args.quick,
        "bodies": bodies,
        "minutes": round((time.monotonic() - started) / 60, 1),
    }  # fmt: skip
    out = (
        ROOT
        / "benchmarks"
        / "results"
        / ("redis-vs-peers-quick.json" if args.quick else "redis-vs-peers.json")
    )
    if not args.workloads:  # a partial run is printed, not kept as the suite's result
        out.write_text(json.dumps({"meta": meta, "table": table}, indent=2) + "\n")
    print()
    print(json.dumps(meta))
    print(markdown(table, contenders))
    print()
    print(ratios_markdown(table, contenders))


if __name__ == "__main__":
    main()
