"""A drain's throughput (``benchmarks.worker``'s: 2 worker processes, no-op jobs, times
from the job records) with this checkout's code and another's, in turns: a before/after
ratio for a change on the hot path, under the same load.

    .venv/bin/python -m benchmarks.drain_against ../main --backend redis --rounds 3

Each turn runs in a fresh process whose ``PYTHONPATH`` (inherited by its worker) is the
checkout's ``src``, on a fresh store; the order is swapped each round. Prints the jobs/s
of each turn, their medians, the ratio, and the load average over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TURN = """
import json, sys, tempfile
from pathlib import Path
from benchmarks import worker
worker.BACKEND = sys.argv[1]
try:
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(worker.bench_throughput(Path(tmp), int(sys.argv[2]), 2)))
finally:
    if worker.BACKEND != "sqlite":
        worker.cleanup()
"""


def turn(src: Path, backend: str, jobs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", TURN, backend, str(jobs)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return float(json.loads(out.stdout.strip().splitlines()[-1])["jobs_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("against", type=Path, help="the other checkout")
    parser.add_argument("--backend", choices=["sqlite", "redis", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    trees = {"this": ROOT / "src", "against": args.against.resolve() / "src"}
    rates: dict[str, list[float]] = {"this": [], "against": []}
    loads = []
    for n in range(args.rounds):
        for who in list(trees) if n % 2 == 0 else list(reversed(trees)):
            loads.append(os.getloadavg()[0])
            rates[who].append(round(turn(trees[who], args.backend, args.jobs)))
    this, other = statistics.median(rates["this"]), statistics.median(rates["against"])
    print(json.dumps({"backend": args.backend, "jobs": args.jobs, "this": rates["this"],
                      "against": rates["against"], "median_this": this, "median_against": other,
                      "ratio": round(this / other, 3),
                      "load_average": [round(min(loads), 1), round(max(loads), 1)]}))  # fmt: skip


if __name__ == "__main__":
    main()
