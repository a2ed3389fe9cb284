"""A small app with the kinds of work Conveyor users offload, for ``conveyor demo``."""

from __future__ import annotations

import asyncio
import time

from conveyor import App
from conveyor.context import TaskContext
from conveyor.errors import SoftTimeLimitExceeded

app = App("demo")
app.conf.task_routes = {"demo.media.*": "media"}


@app.task(name="demo.media.convert", bind=True)
def convert(self: TaskContext, path: str, fmt: str) -> str:
    """Pretend to transcode a file, reporting progress as it goes."""
    for step in range(1, 5):
        time.sleep(0.05)
        self.update_progress(step * 25, message=f"encoding pass {step}/4")
    return path.rsplit(".", 1)[0] + "." + fmt


@app.task(name="demo.devices.ping", queue="devices", bind=True, autoretry_for=(ConnectionError,),
          max_retries=4, retry_backoff=0.2)  # fmt: skip
def ping_device(self: TaskContext, device_id: str) -> dict[str, object]:
    """A flaky device: the first two attempts fail, then it answers."""
    if self.request.attempt <= 2:
        raise ConnectionError(f"device {device_id} did not answer (attempt {self.request.attempt})")
    return {"device": device_id, "status": "online", "attempts": self.request.attempt}


@app.task(name="demo.stats.nightly")
async def nightly_stats(day: str) -> dict[str, object]:
    """An async task: awaits 'queries' concurrently."""
    counts = await asyncio.gather(*(asyncio.sleep(0.05, result=n * 10) for n in range(3)))
    return {"day": day, "orders": sum(counts)}


@app.task(name="demo.reports.send", max_retries=0)
def send_report(email: str) -> None:
    """Fails on bad input: the error lands on the job record."""
    if "@" not in email:
        raise ValueError(f"{email!r} is not an email address")


@app.task(name="demo.export.slow", soft_time_limit=0.3)
def slow_export(rows: int) -> dict[str, object]:
    """Catches its soft time limit and returns what it finished."""
    done = 0
    try:
        for _ in range(rows):
            time.sleep(0.01)
            done += 1
    except SoftTimeLimitExceeded:
        return {"exported": done, "complete": False}
    return {"exported": done, "complete": True}


@app.task(name="demo.export.stuck", time_limit=0.5)
def stuck_export() -> None:
    """Never finishes on its own: the hard time limit kills its process."""
    time.sleep(60)
