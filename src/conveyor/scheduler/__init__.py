"""The scheduler: fires the stored schedules, exactly once per tick (``Scheduler``).

What a schedule is and where it is kept live in ``conveyor.schedules`` (the core), named
here again so one import serves code that runs a scheduler.
"""

from ..schedules import Schedule, ScheduleBook, ScheduleError, ScheduleView, check_schedule, job_id
from .runner import Scheduler, sync_code_schedules

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
