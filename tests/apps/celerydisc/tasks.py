"""A Django app's tasks module, found by ``app.autodiscover_tasks``."""

from __future__ import annotations

from conveyor.celery import shared_task


@shared_task(name="disc.ping")
def ping() -> str:
    return "pong"
