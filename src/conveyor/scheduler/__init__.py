"""Cron and interval schedules, stored in the backend, fired exactly once per tick."""

from .book import ScheduleBook, ScheduleView
from .runner import Scheduler, sync_code_schedules
from .schedule import Schedule, ScheduleError, job_id

__all__ = [
    "Schedule",
    "ScheduleBook",
    "ScheduleError",
    "ScheduleView",
    "Scheduler",
    "job_id",
    "sync_code_schedules",
]
