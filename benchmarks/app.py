"""Tasks the benchmarks run."""

from __future__ import annotations

import os
import time

from conveyor import App
from conveyor.context import TaskContext

from .peers import bodies

# benchmarks.http_api submits bench.noop over HTTP; benchmarks.flat_cost keeps records a
# short time ($BENCH_RESULT_TTL seconds) to see the worker's pruner keep up;
# benchmarks.prune_drain may set its interval ($BENCH_PRUNE_INTERVAL).
app = App(
    "bench",
    http_tasks=["bench.noop"],
    result_ttl=float(os.environ.get("BENCH_RESULT_TTL", 7 * 24 * 3600)),
    prune_interval=float(os.environ.get("BENCH_PRUNE_INTERVAL", 5.0)),
)


@app.task(name="bench.noop")
def noop() -> None:
    return None


@app.task(name="bench.work")
def work() -> None:
    """The PostgreSQL comparison's task: its body is $BENCH_BODY (benchmarks/peers/bodies.py)."""
    bodies.run()


@app.task(name="bench.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="bench.cancellable", bind=True)
def cancellable(self: TaskContext, path: str, seconds: float) -> None:
    """Write this process's id to ``path``, then run for up to ``seconds``. In a pool that
    cannot interrupt it (thread), it stops when told to, as a cooperative task does, and
    writes when it noticed to ``path + ".stopped"`` (``benchmarks.cancel_latency``)."""
    with open(path, "w") as out:
        out.write(str(os.getpid()))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if self.terminate_requested:
            with open(path + ".stopped", "w") as out:
                out.write(repr(time.time()))
            return
        time.sleep(0.001)
