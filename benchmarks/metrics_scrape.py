"""What one Prometheus scrape of ``GET /metrics`` costs on a large SQLite store: a million
finished jobs (a week of them, ``benchmarks.bulk_store``), 100,000 waiting, 3,000 run
through claim and acknowledgement now (so the rollups the windows read are there), 20
live workers and 5 schedules; against the same on an empty store.

    .venv/bin/python -m benchmarks.metrics_scrape build /tmp/large.db           # once
    .venv/bin/python -m benchmarks.metrics_scrape build /tmp/empty.db --finished 0 --waiting 0
    .venv/bin/python -m benchmarks.metrics_scrape time /tmp/large.db /tmp/empty.db --repeat 30
    .venv/bin/python -m benchmarks.metrics_scrape count /tmp/large.db
    valgrind --tool=callgrind .venv/bin/python -m benchmarks.metrics_scrape collect /tmp/large.db

``time`` serves each store with ``conveyor serve``'s server (uvicorn on loopback, a read
token) and scrapes them in turns over real HTTP after one warm-up scrape each: the
median and the worst, in ms, and the load average. ``count`` gives the SQL statements
and SQLite VM steps of one scrape. ``collect`` renders the exposition
``--repeat`` times in this process, without HTTP, for a count of instructions that the
machine's load does not move (take the same command with ``--repeat 0`` from it).
The workers beat once as each command starts (a registry entry lasts a minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from prometheus_client import generate_latest

from conveyor import App
from conveyor.records import WorkerInfo
from conveyor.testing import web
from conveyor.web import TokenStore, create_api
from conveyor.web.metrics import registry_for

from . import bulk_store
from .dashboard_pages import fill


def build(path: str, finished: int, waiting: int) -> None:
    app = App("producer", backend=f"sqlite:///{path}")
    app.task(name="bench.noop")(lambda i=0: i)
    seconds = bulk_store.build(app, finished, waiting)
    fill(app, 0, 0)  # the runs of the last minutes: the windows' rollups
    for i in range(5):
        app.schedules.add(f"every-{i}", "bench.noop", every=60 * (i + 1))
    print(f"{path}: {finished:,} finished + {waiting:,} waiting in {seconds:.0f} s")


def beat(app: App) -> App:
    """20 live workers (a registry entry lasts a minute after its last heartbeat)."""
    for i in range(20):
        app.backend.heartbeat(WorkerInfo(
            id=f"w{i}", name=f"worker-{i}@host{i % 4}", host=f"host{i % 4}", pid=1000 + i,
            queues=bulk_store.QUEUES[i % 2 :: 2], pool="process", concurrency=8, version="bench",
            tasks=[], started_at=app.backend.now(), heartbeat_interval=3600,
        ), [], 30)  # fmt: skip
    return app


@contextmanager
def served(path: str) -> Iterator[tuple[str, dict[str, str]]]:
    app = beat(App("producer", backend=f"sqlite:///{path}"))
    _, secret = TokenStore(app.backend).create("bench", "read")
    with web.served(create_api(app)) as url:
        yield f"{url}/metrics", {"Authorization": f"Bearer {secret}"}


def time_scrapes(paths: list[str], repeat: int) -> None:
    print(f"load average before: {os.getloadavg()}")
    samples: dict[str, list[float]] = {path: [] for path in paths}
    with served(paths[0]) as first, served(paths[-1]) as last, httpx.Client(timeout=60) as client:
        targets = dict(zip(paths, (first, last), strict=False))
        sizes = {}
        for path, (url, headers) in targets.items():
            sizes[path] = len(client.get(url, headers=headers).text)  # warm-up
        for turn in range(repeat):
            order = list(targets.items()) if turn % 2 == 0 else list(reversed(targets.items()))
            for path, (url, headers) in order:
                started = time.perf_counter()
                response = client.get(url, headers=headers)
                samples[path].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
    for path, times in samples.items():
        print(f"{path}: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms, "
              f"{sizes[path]:,} bytes, {repeat} scrapes")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


def collect(path: str, repeat: int) -> None:
    registry = registry_for(beat(App("producer", backend=f"sqlite:///{path}")))
    for _ in range(repeat):
        generate_latest(registry)


def count(path: str) -> None:
    """The SQL statements one scrape runs and the SQLite virtual machine's steps they
    take (counted in hundreds by a progress handler): what no load moves."""
    app = beat(App("producer", backend=f"sqlite:///{path}"))
    registry = registry_for(app)
    generate_latest(registry)  # opens the connection, checks the schema
    conn = app.backend._conn()  # type: ignore[attr-defined]
    statements: list[str] = []
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    conn.set_trace_callback(statements.append)
    conn.set_progress_handler(step, 100)
    generate_latest(registry)
    conn.set_trace_callback(None)
    conn.set_progress_handler(None, 0)
    for statement in statements:
        print("  ", " ".join(statement.split())[:110])
    print(f"{path}: {len(statements)} statements, {steps[0] * 100:,} VM steps (to 100)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=["build", "time", "collect", "count"])
    parser.add_argument("paths", nargs="+", help="SQLite files (time: one or two stores)")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if args.command == "build":
        build(args.paths[0], args.finished, args.waiting)
    elif args.command == "time":
        time_scrapes(args.paths, args.repeat)
    elif args.command == "count":
        count(args.paths[0])
    else:
        collect(args.paths[0], args.repeat)


if __name__ == "__main__":
    main()
