"""The Django app ``conveyor.contrib.django``."""

from __future__ import annotations

import contextlib

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules

from conveyor.errors import ConveyorError

from .checks import check_conveyor
from .runtime import get_app


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
        # The project's app learns Django's side now (``runtime.adopt``), whatever this
        # process does next: a conveyor.celery app's ``delay()`` joins the transaction of
        # a gunicorn worker that never imported a Django task as of a runserver's. Building
        # it connects to nothing; a settings error is the system checks' to report.
        with contextlib.suppress(ConveyorError):
            get_app()
        checks.register(check_conveyor, "conveyor")
