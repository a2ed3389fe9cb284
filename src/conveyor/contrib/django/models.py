"""Two unmanaged models, with no table: they only give the admin its "Jobs" and
"Schedules" pages (``admin.py``), which read and write Conveyor's backend, whichever it is."""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    id = models.CharField(primary_key=True, max_length=64)

    class Meta:
        managed = False
        verbose_name = "job"


class Schedule(models.Model):
    name = models.CharField(primary_key=True, max_length=100)

    class Meta:
        managed = False
        verbose_name = "schedule"
