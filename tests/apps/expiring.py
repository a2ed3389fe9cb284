"""An app whose task expires 30 s after it is queued unless it has started: what the
tests of jobs that could never run enqueue (from the CLI, with ``--countdown``)."""

from __future__ import annotations

from conveyor import App

app = App("expiring")


@app.task(name="exp.report", expires=30)
def report(day: str) -> str:
    return day
