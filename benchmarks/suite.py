"""The whole benchmark suite in one command: Conveyor against its peers on Redis and on
PostgreSQL, and Conveyor on SQLite as the embedded reference.

    .venv/bin/python -m benchmarks.suite            # 3 repetitions; about 15 minutes on 2 cores
    .venv/bin/python -m benchmarks.suite --quick    # 1 repetition, smaller counts; ~5 minutes

Each part also runs alone (benchmarks.compare_redis, benchmarks.compare_postgres,
benchmarks.worker --backend sqlite, benchmarks.http_api). Peers are installed into their own venvs under
benchmarks/.peers/ on first use, from pinned requirements. Results land in
benchmarks/results/; docs/benchmarks.md holds the tables of a full run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 repetition, smaller counts")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    parts = [
        ("Redis: Conveyor and its peers", ["benchmarks.compare_redis", *quick]),
        ("PostgreSQL: Conveyor and procrastinate", ["benchmarks.compare_postgres", *quick]),
        ("SQLite: Conveyor, the embedded reference", ["benchmarks.worker", "--backend", "sqlite", *quick]),
        ("REST API: Conveyor's (SQLite, Redis, PostgreSQL) and Flower's", ["benchmarks.http_api", *quick]),
    ]  # fmt: skip
    started = time.monotonic()
    failed = []
    for title, argv in parts:
        print(f"\n=== {title}  ({' '.join(argv)})", flush=True)
        if subprocess.run([sys.executable, "-m", *argv], cwd=ROOT).returncode != 0:
            failed.append(title)
    print(
        f"\nsuite: {(time.monotonic() - started) / 60:.1f} minutes; results in benchmarks/results/"
    )
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
