"""procrastinate, used the way its docs recommend, for the side-by-side benchmark."""

from __future__ import annotations

import asyncio
import os

import procrastinate

from . import bodies

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_PEER_PG"])
)


@app.task(name="noop", queue="default")
def noop() -> None:
    """Its body is $BENCH_BODY (benchmarks/peers/bodies.py), as Conveyor's bench.work."""
    bodies.run()


@app.task(name="nap", queue="default")
async def nap(seconds: float) -> None:
    """A coroutine, as procrastinate's docs recommend for I/O-bound work: a sync task runs
    on asyncio's default thread pool (6 threads on 2 cores), so 20 at once could never run."""
    await asyncio.sleep(seconds)
