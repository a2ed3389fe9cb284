"""An app with a one-second schedule, for scheduler process tests."""

from __future__ import annotations

import os

from conveyor import App
from conveyor.context import TaskContext

app = App("sched-tests", heartbeat_interval=0.3)


#: TICK_EVERY changes the declaration, as a deploy of new code would.
@app.periodic(every=float(os.environ.get("TICK_EVERY", "1")), schedule_name="tick", bind=True)
def tick(self: TaskContext) -> None:
    with open(os.environ["TICK_LEDGER"], "a") as ledger:
        ledger.write(f"{self.request.headers['tick']}\n")
