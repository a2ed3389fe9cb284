"""An app whose workers heartbeat every 5 ms, so that while a backlog drains, heartbeats
and acknowledgements of the same leases cross many times a second
(``tests/worker/test_backlog.py``)."""

from __future__ import annotations

from conveyor import App

app = App("fastbeat", heartbeat_interval=0.005, lease_seconds=5.0, rescue_interval=60.0)


@app.task(name="f.noop")
def noop(n: int) -> int:
    return n
