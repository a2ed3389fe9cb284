"""A Celery-style app whose task's first delivery hangs until its worker is killed, then
retries once: ``tests/celery/test_lost.py`` counts its retries."""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor.celery import Celery

app = Celery("lost", broker=os.environ.get("CELERY_BROKER_URL", "sqlite:///./celery-lost.db"))


@app.task(bind=True, name="lost.flaky")
def flaky(self: Any, ledger: str) -> int:
    """Writes a line per start; the first start hangs (its worker is killed), the second
    asks for a retry, the third returns what ``self.request.retries`` said."""
    with open(ledger, "a") as lines:
        lines.write(f"start {self.request.retries}\n")
    with open(ledger) as lines:
        starts = len(lines.readlines())
    if starts == 1:
        time.sleep(60)
    if starts == 2:
        raise self.retry(countdown=0)
    return int(self.request.retries)
