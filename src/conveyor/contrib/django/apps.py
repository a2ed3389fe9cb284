"""The Django app ``conveyor.contrib.django``."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules

from .checks import check_conveyor


class ConveyorConfig(AppConfig):
    name = "conveyor.contrib.django"
    label = "conveyor"
    verbose_name = "Conveyor"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Every installed app's tasks.py: Django builds each @task at import, which
        # registers it on the Conveyor app, so a worker knows every task before its
        # first job (a task elsewhere is imported by name when its first job comes).
        autodiscover_modules("tasks")
        checks.register(check_conveyor, "conveyor")
