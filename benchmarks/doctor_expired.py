"""CPU of one ``doctor`` (``control.diagnose``) on a store whose queue no worker consumes:
3,000 waiting jobs of 10 KB each, a third of them expired, so the queue checks count the
expired ones (``expired_waiting``).

    .venv/bin/python -m benchmarks.doctor_expired build sqlite:////tmp/doctor.db
    .venv/bin/python -m benchmarks.doctor_expired measure sqlite:////tmp/doctor.db

``measure`` prints the CPU time of this process per call (median and range of ``--calls``
calls after a warm-up) and, on Redis, the server's CPU time per call (``INFO
cpu``: give the benchmark a server of its own, as nothing else may use it while it
counts). To compare two checkouts, run ``measure`` from each in turn on one store
(``PYTHONPATH=/path/to/other/src``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from conveyor import App, control

JOBS = 3000
EXPIRED = 1000
SIZE = 10_000
QUEUE = "unconsumed"


def build(url: str) -> None:
    app = App("doctor-bench", backend=url)

    @app.task(name="bench.convert", queue=QUEUE)
    def convert(blob: str) -> None: ...

    blob = "x" * SIZE
    for i in range(JOBS):
        convert.apply_async((blob,), expires=1.0 if i < EXPIRED else 86400.0)
    time.sleep(1.5)  # the first EXPIRED jobs expire a second after they were sent
    print(f"stored {JOBS} jobs of {SIZE:,} bytes in {QUEUE!r}, {EXPIRED} expiring after 1 s")


def server_cpu(app: App) -> float | None:
    """The Redis server's CPU time so far (ms, user + system: ``INFO cpu``); the time inside
    commands (``commandstats``) counts a descheduled server's waits too."""
    client = getattr(app.backend, "client", None)
    if client is None:
        return None
    cpu = client.info("cpu")
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1000


def measure(url: str, calls: int) -> dict[str, Any]:
    app = App("doctor-bench", backend=url)
    found = control.diagnose(app)  # warm-up: connections, scripts loaded
    (queue,) = [f for f in found if f.check == "queue-without-worker"]
    cpu, wall, server = [], [], []
    for _ in range(calls):
        before = server_cpu(app)
        c0, w0 = time.process_time(), time.perf_counter()
        control.diagnose(app)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
        after = server_cpu(app)
        if before is not None and after is not None:
            server.append(after - before)
    result = {"finding": queue.data, "cpu_ms": cpu, "wall_ms": wall, "server_cpu_ms": server}
    for name in ("cpu_ms", "wall_ms", "server_cpu_ms"):
        if result[name]:
            values = result[name]
            print(
                f"{name}: median {statistics.median(values):.2f} "
                f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} calls)"
            )
    print("finding data:", queue.data)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "measure"])
    parser.add_argument("url")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    if args.command == "build":
        build(args.url)
    else:
        measure(args.url, args.calls)


if __name__ == "__main__":
    main()
