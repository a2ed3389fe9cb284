"""Schedules: what a cron or interval schedule is (``Schedule``) and where they are kept
(``ScheduleBook``, reached as ``app.schedules``). The process that fires them is the
scheduler (``conveyor.scheduler``), in the layer above."""

from .book import ScheduleBook, ScheduleView, check_schedule
from .schedule import Schedule, ScheduleError, job_id

__all__ = ["Schedule", "ScheduleBook", "ScheduleError", "ScheduleView", "check_schedule", "job_id"]
