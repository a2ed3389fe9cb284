"""Cron and interval schedules, stored in the backend, fired exactly once per tick."""

from .book import ScheduleBook, ScheduleView, check_schedule
from .runner import Scheduler, sync_code_schedules
from .schedule import Schedule, ScheduleError, job_id

__all__ = [
    "Schedule",
    "ScheduleBook",
    "ScheduleError",
    "ScheduleView",
    "Scheduler",
    "check_schedule",
    "job_id",
    "sync_code_schedules",
]
