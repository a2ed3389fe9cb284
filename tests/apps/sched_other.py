"""A second app on the scheduler tests' store: its own schedule, task and queue, as an
app moved over one queue at a time shares a store with the first."""

from __future__ import annotations

from conveyor import App

app = App("sched-other", default_queue="other")


@app.periodic(every=1.0, schedule_name="other-tick")
def other_tick() -> None: ...
