"""A small app with the kinds of work Conveyor users offload, for ``conveyor demo``: jobs
with progress, a retry that then succeeds, failures with tracebacks, time limits, a long
job to cancel while it runs, the steps of a chain and a chord, and a periodic job."""

from __future__ import annotations

import asyncio
import time

from conveyor import App
from conveyor.context import TaskContext
from conveyor.errors import SoftTimeLimitExceeded, Terminated

app = App("demo")
app.conf.task_routes = {"demo.media.*": "media"}
#: The dashboard's "submit" form (and POST /api/jobs) may run every demo task.
app.conf.http_tasks = ["demo.*"]


@app.task(name="demo.media.convert", bind=True)
def convert(self: TaskContext, path: str, fmt: str) -> str:
    """Pretend to transcode a file, reporting progress as it goes."""
    for step in range(1, 11):
        time.sleep(0.2)
        self.update_progress(step * 10, message=f"encoding pass {step}/10")
    return path.rsplit(".", 1)[0] + "." + fmt


@app.task(name="demo.media.thumbnail")
def thumbnail(path: str, label: str) -> str:
    """Quick work on the one-at-a-time media queue: the highest priority runs first."""
    time.sleep(0.1)
    return f"{label}: thumbnail of {path}"


@app.task(name="demo.export.archive", bind=True)
def archive(self: TaskContext, files: int) -> int:
    """A long job that reports progress; the demo cancels it while it runs. It checks
    whether it was cancelled at every file (a cancel without terminate asks; only the task
    can stop itself then), and stops there: the job ends REVOKED."""
    for done in range(1, files + 1):
        time.sleep(0.5)
        if self.is_revoked():
            raise Terminated(f"cancelled after {done - 1}/{files} files")
        self.update_progress(100 * done / files, message=f"{done}/{files} files archived")
    return files


@app.task(name="demo.text.fetch")
def fetch(name: str) -> str:
    """The first step of the chain: 'download' a text."""
    return f"{name}: the quick brown fox jumps over the lazy dog"


@app.task(name="demo.text.count")
def count_words(text: str) -> int:
    """A chain's middle step and a chord's parallel part."""
    return len(text.split())


@app.task(name="demo.text.total")
def total(counts: list[int]) -> int:
    """A chord's callback: runs once, after every part succeeded."""
    return sum(counts)


@app.periodic(every=60, name="demo.heartbeat")
def heartbeat() -> str:
    """Fired by the scheduler every minute (the demo also runs it once at the start)."""
    return "all systems nominal"


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
