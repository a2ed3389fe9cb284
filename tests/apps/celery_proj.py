"""A small project written the way Celery's documentation (and the systems Conveyor
replaces) write one. Only the imports name ``conveyor.celery`` instead of ``celery``:
``tests/celery/test_project.py`` runs it with real workers, and checks that nothing else
in this file mentions Conveyor."""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor.celery import Celery, shared_task
from conveyor.celery.exceptions import SoftTimeLimitExceeded

app = Celery("proj", broker=os.environ.get("CELERY_BROKER_URL", "sqlite:///./celery-proj.db"))


app.config_from_object("tests.apps.celeryconfig")


@app.task(bind=True, name="proj.flaky", max_retries=3)
def flaky(self: Any, key: str) -> int:
    """Fails twice with a connection error, then succeeds: returns how often it retried."""
    try:
        if self.request.retries < 2:
            raise ConnectionError(f"camera {key} did not answer")
    except ConnectionError as exc:
        raise self.retry(countdown=0.2, exc=exc) from exc
    return int(self.request.retries)


@app.task(bind=True, name="proj.hopeless", max_retries=1, default_retry_delay=0.1)
def hopeless(self: Any) -> None:
    try:
        raise ValueError("the device is gone")
    except ValueError as exc:
        raise self.retry(exc=exc) from exc


@app.task(bind=True, name="proj.import_rows")
def import_rows(self: Any, total: int, pause: float) -> int:
    for i in range(total):
        self.update_state(state="PROGRESS", meta={"current": i, "total": total})
        time.sleep(pause)
    return total


@app.task(name="proj.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="proj.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="proj.tsum")
def tsum(numbers: list[int]) -> int:
    return sum(numbers)


@app.task(name="proj.cameras.snapshot")
def snapshot(camera: str) -> dict[str, Any]:
    return {"camera": camera, "queue": "hikvision"}


@app.task(bind=True, name="proj.sync_archive", soft_time_limit=60)
def sync_archive(self: Any, seconds: float) -> str:
    try:
        for _ in range(int(seconds * 10)):
            time.sleep(0.1)  # a file at a time
    except SoftTimeLimitExceeded:
        return "stopped early"
    return "done"


@shared_task(name="proj.cleanup")
def cleanup() -> str:
    return "cleaned"


@shared_task(name="proj.touch")
def touch() -> None:
    with open(os.environ["PROJ_LEDGER"], "a") as ledger:
        ledger.write("tick\n")
