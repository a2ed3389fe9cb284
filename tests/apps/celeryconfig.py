"""The settings module of tests/apps/celery_proj.py, as a Celery project keeps one."""

from __future__ import annotations

import os

from conveyor.celery.schedules import crontab

# Celery needs a result backend for get(); Conveyor keeps results in the broker's store
result_backend = os.environ.get("CELERY_BROKER_URL", "sqlite:///./celery-proj.db")

task_serializer = "json"
accept_content = ["json"]
timezone = "Europe/Berlin"
task_default_queue = "default"
task_routes = {"proj.cameras.*": {"queue": "hikvision"}}
task_acks_late = True
task_default_retry_delay = 1
task_max_retries = 3
result_expires = 3600
beat_schedule = {
    "nightly-cleanup": {"task": "proj.cleanup", "schedule": crontab(hour=1, minute=0)},
    "touch every second": {"task": "proj.touch", "schedule": 1.0},
}
