"""Tasks the benchmarks run."""

from __future__ import annotations

import time

from conveyor import App

app = App("bench")


@app.task(name="bench.noop")
def noop() -> None:
    return None


@app.task(name="bench.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)
