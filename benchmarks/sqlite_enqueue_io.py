"""What one single enqueue writes on SQLite, on an empty store and beside a backlog:
counts the machine's load cannot move (write and read system calls, bytes, from
``/proc/self/io``: the WAL frames each commit appends, the pages read past SQLite's
cache), with the CPU time beside them, in alternating rounds.

    .venv/bin/python -m benchmarks.sqlite_enqueue_io --waiting 300000 --reps 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from conveyor import App

from . import bulk_store


def io() -> dict[str, int]:
    pairs = (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--waiting", type=int, default=300_000, help="jobs in another queue")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000, help="single enqueues per measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = {}
        for label, waiting in (("empty", 0), (f"{args.waiting:,} waiting", args.waiting)):
            app = App("producer", backend=f"sqlite:///{Path(folder) / str(len(stores))}.db")
            app.backend.counts()
            if waiting:
                bulk_store.build(app, 0, waiting, queues=["backlog"])
            stores[label] = app
        for rep in range(args.reps):
            for label, app in stores.items():
                for _ in range(200):  # warm: the pages an enqueue touches are cached
                    app.send_task("bench.noop")
                before, cpu = io(), time.thread_time()
                for _ in range(args.n):
                    app.send_task("bench.noop")
                after, cpu = io(), time.thread_time() - cpu
                per = {k: round((after[k] - before[k]) / args.n, 2)
                       for k in ("syscw", "wchar", "syscr", "rchar")}  # fmt: skip
                print(f"round {rep + 1}, {label}: {per}, CPU {cpu / args.n * 1e6:.1f} us, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
