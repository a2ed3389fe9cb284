"""procrastinate, used the way its docs recommend, for the side-by-side benchmark."""

from __future__ import annotations

import os
import time

import procrastinate

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_PEER_PG"])
)


@app.task(name="noop", queue="default")
def noop() -> None:
    return None


@app.task(name="nap", queue="default")
def nap(seconds: float) -> None:
    time.sleep(seconds)
